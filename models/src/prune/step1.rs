//! Step 1: prune filters across the whole network to cut computation.

use super::schedule::{keep_last_within, lowest_global, within_budget};
use super::{Report, Run};
use crate::error::{ModelError, Result};
use crate::series::MemberKind;

/// Run step 1 to its end, continuing from the last step-1 member when resuming.
pub fn run(run: &mut Run, report: Report) -> Result<()> {
    let original =
        run.series.original().cloned().ok_or_else(|| ModelError::Config("series has no original model".into()))?;
    let reference = original.accuracy;
    let total_filters: usize = original.widths.iter().sum();
    let per_iter = ((total_filters as f64 * run.cfg.step1.fraction).ceil() as usize).max(1);
    let last = run.series.members.iter().rev().find(|m| matches!(m.kind, MemberKind::Step1 { .. })).cloned();
    let (mut parent, mut iter) = match &last {
        Some(m) => (
            m.clone(),
            match m.kind {
                MemberKind::Step1 { iter } => iter,
                _ => 0,
            },
        ),
        None => (original.clone(), 0),
    };
    if last.as_ref().is_some_and(|m| !m.within_budget) {
        // Interrupted right after the budget broke: step 1 is over.
        return finalise(run, report);
    }
    let ft = run.cfg.step1.finetune.clone();
    loop {
        let remaining: usize = parent.widths.iter().sum();
        if iter >= run.cfg.step1.max_iters || remaining <= parent.widths.len() {
            report(&format!("step 1: stopping after {iter} iterations ({remaining} filters left)"));
            break;
        }
        iter += 1;
        let (params, spec) = run.load_member(&parent)?;
        let net = params.apply(crate::zoo::Net::new(&spec, &run.device))?;
        let scores = run.rank(&net, None, iter as u64)?;
        let removals = lowest_global(&scores, per_iter, 1);
        let (net, new_spec, acc, wall) =
            run.prune_and_finetune(&params, &spec, &removals, &ft, &format!("step1 it{iter}"))?;
        let within = within_budget(acc, reference, run.cfg.budget);
        let m = run.record(
            &net,
            &new_spec,
            format!("step1-{iter}"),
            MemberKind::Step1 { iter },
            format!("step1/iter{iter:02}"),
            acc,
            within,
            ft.epochs,
            wall,
            &parent.name,
        )?;
        report(&format!(
            "step 1 iter {iter}: {} → {} filters, {:.2} M MACs ({:.1}× fewer), accuracy {:.2} % (floor {:.2} %){}, {wall:.0} s",
            remaining,
            m.widths.iter().sum::<usize>(),
            m.macs as f64 / 1e6,
            original.macs as f64 / m.macs.max(1) as f64,
            acc * 100.0,
            (reference - run.cfg.budget) * 100.0,
            if within { "" } else { " — over budget, stop" },
        ));
        if !within {
            break;
        }
        parent = m;
    }
    finalise(run, report)
}

/// Decide which iteration step 1 keeps (the budget rule), fine-tune it a little longer
/// (authors: 3 epochs), and mark step 1 done.
fn finalise(run: &mut Run, report: Report) -> Result<()> {
    let reference = run.series.original().map(|m| m.accuracy).unwrap_or(0.0);
    let iterations: Vec<_> =
        run.series.members.iter().filter(|m| matches!(m.kind, MemberKind::Step1 { .. })).cloned().collect();
    let accuracies: Vec<f64> = iterations.iter().map(|m| m.accuracy).collect();
    let (keep, _) = keep_last_within(&accuracies, reference, run.cfg.budget);
    let Some(kept) = keep.map(|i| iterations[i].clone()) else {
        report("step 1: no iteration stayed within budget; step 2 starts from the original");
        run.series.step1_done = true;
        return run.series.save(run.dir);
    };
    run.series.step1_kept = Some(kept.id);
    let epochs = run.cfg.step1.final_epochs;
    if epochs > 0.0 {
        let (params, spec) = run.load_member(&kept)?;
        let ft = crate::train::TrainConfig { epochs, ..run.cfg.step1.finetune.clone() };
        let (net, spec, acc, wall) = run.prune_and_finetune(&params, &spec, &Default::default(), &ft, "step1 final")?;
        // The final model continues step 1's numbering after the last iteration tried.
        let iter = iterations
            .iter()
            .filter_map(|m| match m.kind {
                MemberKind::Step1 { iter } => Some(iter),
                _ => None,
            })
            .max()
            .unwrap_or(0)
            + 1;
        let better = within_budget(acc, reference, run.cfg.budget) && acc >= kept.accuracy;
        if better {
            // Mark step 1 done in the same manifest write that adds the final member, so a
            // resume never mistakes it for an iteration to prune further.
            run.series.step1_kept = Some(run.series.next_id());
            run.series.step1_done = true;
            run.record(
                &net,
                &spec,
                "step1-final".into(),
                MemberKind::Step1 { iter },
                "step1/final".into(),
                acc,
                true,
                epochs,
                wall,
                &kept.name,
            )?;
        }
        report(&format!(
            "step 1 final fine-tune of {}: accuracy {:.2} % → {:.2} %{}",
            kept.name,
            kept.accuracy * 100.0,
            acc * 100.0,
            if better { "" } else { " (not better: keeping the iteration)" }
        ));
    }
    run.series.step1_done = true;
    run.series.save(run.dir)
}
