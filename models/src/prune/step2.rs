//! Step 2: for each conv, prune only that conv (from the step-1 model) to shrink the tensor at
//! the partition points it feeds.

use super::schedule::{log_schedule, lowest_in_layer, within_budget};
use super::{Report, Run};
use crate::error::{ModelError, Result};
use crate::series::{Member, MemberKind};
use std::collections::BTreeMap;

/// Build every configured family not yet done, continuing a half-built family when resuming.
pub fn run(run: &mut Run, report: Report) -> Result<()> {
    let start = run
        .series
        .step1_final()
        .or_else(|| run.series.original())
        .cloned()
        .ok_or_else(|| ModelError::Config("series has no model to start step 2 from".into()))?;
    let reference = start.accuracy;
    let n_convs = start.widths.len();
    let families: Vec<usize> =
        if run.cfg.step2.families.is_empty() { (0..n_convs).collect() } else { run.cfg.step2.families.clone() };
    if let Some(&bad) = families.iter().find(|&&c| c >= n_convs) {
        return Err(ModelError::Config(format!("step2.families names conv {bad}, the model has {n_convs}")));
    }
    let names = conv_names(run);
    let started = std::time::Instant::now();
    let mut built = 0usize;
    for (done, &conv) in families.iter().enumerate() {
        if run.series.step2_done.contains(&(conv as u32)) {
            continue;
        }
        family(run, &start, conv, reference, &names[conv], report)?;
        run.series.step2_done.push(conv as u32);
        run.series.save(run.dir)?;
        built += 1;
        let left = families.len() - done - 1;
        let per_family = started.elapsed().as_secs_f64() / built as f64;
        report(&format!(
            "step 2: family {} done ({left} left, ~{:.0} min to go)",
            names[conv],
            per_family * left as f64 / 60.0
        ));
    }
    Ok(())
}

fn conv_names(run: &Run) -> Vec<String> {
    let spec = &run.series.base;
    let mut names = vec![String::new(); spec.widths.len()];
    for (i, u) in spec.units().iter().enumerate() {
        if let crate::zoo::Unit::Conv { conv, .. } = *u {
            names[conv] = run.series.points[i + 1].clone();
        }
    }
    names
}

fn family(run: &mut Run, start: &Member, conv: usize, reference: f64, name: &str, report: Report) -> Result<()> {
    let schedule = log_schedule(start.widths[conv], run.cfg.step2.points);
    let last = run
        .series
        .members
        .iter()
        .rev()
        .find(|m| matches!(m.kind, MemberKind::Step2 { conv: c, .. } if c as usize == conv))
        .cloned();
    let (mut parent, mut iter) = match &last {
        Some(m) => (
            m.clone(),
            match m.kind {
                MemberKind::Step2 { iter, .. } => iter,
                _ => 0,
            },
        ),
        None => (start.clone(), 0),
    };
    if last.as_ref().is_some_and(|m| !m.within_budget) {
        return Ok(());
    }
    let ft = run.cfg.step2.finetune.clone();
    let current = parent.widths[conv];
    for &target in schedule.iter().filter(|&&w| w < current) {
        iter += 1;
        let (params, spec) = run.load_member(&parent)?;
        let net = params.apply(crate::zoo::Net::new(&spec, &run.device))?;
        let scores = run.rank(&net, Some(&[conv]), 1000 + conv as u64 * 100 + iter as u64)?;
        let remove = lowest_in_layer(&scores[conv], spec.widths[conv] - target);
        let removals = BTreeMap::from([(conv, remove)]);
        let (net, new_spec, acc, wall) =
            run.prune_and_finetune(&params, &spec, &removals, &ft, &format!("{name} →{target}"))?;
        let within = within_budget(acc, reference, run.cfg.budget);
        let m = run.record(
            &net,
            &new_spec,
            format!("step2-{name}-{target}"),
            MemberKind::Step2 { conv: conv as u32, iter },
            format!("step2/{name}/w{target:03}"),
            acc,
            within,
            ft.epochs,
            wall,
            &parent.name,
        )?;
        report(&format!(
            "step 2 {name}: width {} → {target}, accuracy {:.2} % (floor {:.2} %){}, {wall:.0} s",
            spec.widths[conv],
            acc * 100.0,
            (reference - run.cfg.budget) * 100.0,
            if within { "" } else { " — over budget, family done" }
        ));
        if !within {
            break;
        }
        parent = m;
    }
    Ok(())
}
