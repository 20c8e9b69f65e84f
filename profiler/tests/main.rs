//! Profiler behaviour on a tiny synthetic series built here: random-init VGG-16 members with
//! widths 1..8 on 1-channel 32×32 synthetic images. Few runs and images keep it fast on 2 cores;
//! nothing asserts on timings beyond their structure.

mod fixture;
mod profile;
mod tensors;
