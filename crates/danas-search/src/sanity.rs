//! Checks for absurd settings that parse but cannot mean what they say (issue 30,
//! item 6): a final stage that trains for zero steps, counts so large that they
//! overflow. Each is an input error naming the key.

use crate::SearchError;
use crate::config::SearchConfig;

/// The largest step count any stage accepts: beyond it a typo is likelier than a
/// plan, and step arithmetic (warm-up, schedules) could overflow.
pub const MAX_STEPS: u64 = 1 << 40;

fn bad(field: &str, value: impl std::fmt::Display, reason: &str) -> SearchError {
    SearchError::Config { field: field.into(), value: value.to_string(), reason: reason.into() }
}

/// Rejects settings that no search can honour.
///
/// # Errors
/// [`SearchError::Config`] naming the key.
pub(crate) fn check_absurd(c: &SearchConfig) -> Result<(), SearchError> {
    if c.final_top_k > 0 && c.final_steps == 0 {
        return Err(bad(
            "final_steps",
            0,
            "must be at least 1 when final_top_k > 0 (it would export untrained models); set final_top_k = 0 to skip the final stage",
        ));
    }
    for (field, v) in [
        ("supernet.steps", c.supernet.steps),
        ("supernet.warmup_steps", c.supernet.warmup_steps),
        ("evaluation.finetune_steps", c.evaluation.finetune_steps),
        ("selection.finetune_steps", c.selection.finetune_steps),
        ("selection.retrain_steps", c.selection.retrain_steps),
        ("final_steps", c.final_steps),
    ] {
        if v > MAX_STEPS {
            return Err(bad(field, v, "is absurdly large (at most 2^40 steps)"));
        }
    }
    if c.selection.mode == crate::config::SelectionMode::Halving
        && c.selection.retrain_steps > 0
        && c.selection.top_k == 0
    {
        return Err(bad("selection.top_k", 0, "must be at least 1 when retrain_steps > 0"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: SearchError) -> String {
        match e {
            SearchError::Config { field, .. } => field,
            other => panic!("expected a config error, got {other}"),
        }
    }

    #[test]
    fn zero_final_steps_is_an_input_error_naming_the_key() {
        let c = SearchConfig { final_steps: 0, ..SearchConfig::default() };
        let e = c.check().err().map(field_of);
        assert_eq!(e.as_deref(), Some("final_steps"));
        // Without a final stage, zero final steps means nothing.
        let c = SearchConfig { final_steps: 0, final_top_k: 0, ..SearchConfig::default() };
        assert!(c.check().is_ok());
    }

    #[test]
    fn overflowing_budgets_are_input_errors_naming_the_key() {
        for b in ["18446744073709551615s", "99999999999999999999h", "1e400s"] {
            let c = SearchConfig { budget: Some(b.into()), ..SearchConfig::default() };
            let e = c.check().err().map(field_of);
            assert_eq!(e.as_deref(), Some("budget"), "{b}");
        }
    }

    #[test]
    fn absurd_step_counts_are_input_errors() {
        let mut c = SearchConfig::default();
        c.supernet.steps = u64::MAX;
        assert_eq!(c.check().err().map(field_of).as_deref(), Some("supernet.steps"));
    }
}
