//! The final stage: the most accurate Pareto candidates trained fully, their test
//! metrics journaled and their deployable models written to `DIR/models/`.

use danas_core::metric;

use crate::{Finalized, Journal, Search, SearchError, SearchEvent, TrialRecord};

impl Search {
    /// Trains the top-k Pareto candidates fully and merges their final metrics
    /// (test included) into their journaled metrics. Already finalised trials are skipped.
    ///
    /// A system that fails is journaled (`final-failed`) and the others are still
    /// tried; then the study's outputs are written and the failure is returned as
    /// [`SearchError::FinalStage`] with what to do about it.
    pub(crate) fn final_stage(&mut self, journal: &mut Journal) -> Result<(), SearchError> {
        let trials = journal.trials()?;
        let (mut tried, mut failures) = (0usize, Vec::<String>::new());
        for &i in crate::selection::pareto_front(&trials).iter().take(self.final_top_k) {
            let t = &trials[i];
            if t.metrics.as_ref().is_some_and(|m| m.value(metric::TEST_ACCURACY).is_some()) {
                continue;
            }
            let phase = format!("final training of trial {} ({})", t.id, t.candidate);
            self.emit(&SearchEvent::Phase(&phase));
            tried += 1;
            match self.evaluator.finalize(&t.candidate, t.seed, &self.dir, &format!("trial-{}", t.id)) {
                Ok(Some(f)) => {
                    let mut m = t.metrics.clone().unwrap_or_default();
                    m.extend(&f.metrics);
                    let model_dir = self.export(journal, t, &f)?;
                    journal.record_final(t.id, &m, f.checkpoint.as_deref(), model_dir.as_deref())?;
                    journal.event("final", &format!("trial {} finalised", t.id))?;
                }
                Ok(None) => break,
                Err(e) => {
                    let why = format!("trial {}: {e}", t.id);
                    journal.event("final-failed", &why)?;
                    failures.push(why);
                }
            }
        }
        let Some(first) = failures.first() else { return Ok(()) };
        if journal.is_postgres() {
            // workers of a shared study stop when they see this
            journal.set_meta("finished", "1")?;
        }
        let all = journal.trials()?;
        let board = self.cost.deploy_profile();
        crate::report::write_outputs_on(&self.dir, &all, self.cost.limits().as_ref(), board.as_ref())?;
        Err(SearchError::FinalStage { failed: failures.len(), tried, reason: first.clone(), fix: final_fix(first) })
    }

    /// Writes a finalised trial's int8 model to `models/trial-N/`, planned on the
    /// gate's board; returns the folder (relative to the results directory), or
    /// `None` when there is no model or writing it failed (journaled).
    fn export(&self, journal: &Journal, t: &TrialRecord, f: &Finalized) -> Result<Option<String>, SearchError> {
        let Some(model) = &f.int8 else { return Ok(None) };
        let rel = format!("models/trial-{}", t.id);
        let profile = match self.cost.deploy_profile() {
            Some(p) => p,
            None => danas_cost::Profile::builtin("host")
                .map_err(|source| SearchError::Cost { what: "the host profile".into(), source })?,
        };
        let info = crate::deploy::ModelInfo {
            candidate: &t.candidate,
            classes: model
                .outputs
                .first()
                .and_then(|&o| model.tensors.get(o as usize))
                .map_or(0, |o| o.elements() as u32),
            metrics: serde_json::to_value(&f.metrics).unwrap_or(serde_json::Value::Null),
            calib_images: f.calib_images,
            class_names: self.evaluator.class_names(),
        };
        match crate::deploy::write_model_dir(&self.dir.join(&rel), model, &profile, &info) {
            Ok(_) => Ok(Some(rel)),
            Err(e) => {
                journal.event("export-failed", &format!("trial {}: {e}", t.id))?;
                Ok(None)
            }
        }
    }
}

/// What to do about a final-stage failure.
fn final_fix(reason: &str) -> String {
    if reason.contains("test split is empty") || (reason.contains("test split") && reason.contains("no usable images"))
    {
        "no test split: add test/ to the data source, or carve one with `--split-test 0.1` \
         (`split_test = 0.1`), or set `--final-top-k 0` (`final_top_k = 0`) to skip the final stage. \
         The search's results (report.md, pareto.csv, the journal) are written; models/ is not."
            .to_string()
    } else {
        "The search's results (report.md, pareto.csv, the journal) are written; models/ is not. Fix the \
         cause and search again, or skip the final stage with `--final-top-k 0`."
            .to_string()
    }
}
