//! The planner's integration tests, one binary: selection, floors, baselines, hysteresis and
//! profiles (`planner`); what the controller adds online — calibration and the frame rate
//! (`online`).

mod online;
mod planner;
