//! The planner's integration tests, one binary: profiles (`profiles`), selection and baselines
//! (`selection`), hysteresis (`hysteresis`), properties on random profiles (`properties`), and
//! what the controller adds online — calibration and the frame rate (`online`). Fixtures shared
//! between them are in `fixtures`, built with `tandem_planner::testkit`.

mod fixtures;
mod hysteresis;
mod online;
mod profiles;
mod properties;
mod selection;
