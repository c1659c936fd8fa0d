//! The search loop, one function per phase: replay (on resume), propose, gate,
//! prepare supernets, evaluate, settle; then the final stage. Each trial is
//! committed to the journal together with the optimiser's tell event.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use danas_core::{Candidate, DataConfig, Metrics};
use danas_optim::{Event, Outcome, Proposal, TrialId};
use serde_json::Value;

use crate::pool::fan_out;
use crate::record::candidate_key;
use crate::report::write_outputs_on;
use crate::{
    Assessment, Control, Journal, Prepared, Progress, Promotion, Search, SearchError, SearchEvent, SearchSummary,
    TrialEnd, TrialRecord, TrialStatus,
};

/// Safety net: at most this many cost-gate rejections per allowed evaluation
/// before the loop gives up on an optimiser that keeps proposing infeasible candidates.
const MAX_INFEASIBLE_PER_EVAL: u64 = 50;

/// The loop stops when the optimiser proposes this many candidates in a row that
/// were all evaluated before: the space (or the optimiser) is exhausted.
const MAX_REPEATS_IN_A_ROW: u64 = 500;

/// The study's clock: earlier sessions plus this one.
#[derive(Clone, Copy)]
struct Clock {
    prior: f64,
    started: Instant,
}

impl Clock {
    fn now(&self) -> Duration {
        Duration::from_secs_f64(self.prior) + self.started.elapsed()
    }
}

/// Everything the loop carries from one batch to the next.
struct State {
    journal: Journal,
    clock: Clock,
    progress: Progress,
    /// Proposals asked for before a crash and never told: evaluated first.
    queue: Vec<Proposal>,
    /// The first completed trial of each candidate and the outcome it was told, for repeats.
    memo: BTreeMap<String, (u64, Outcome)>,
    /// Data configurations whose supernet is ready.
    ready: BTreeSet<DataConfig>,
    /// Supernets that failed in this run: their candidates fail without retraining.
    broken: BTreeMap<DataConfig, String>,
    repeats_in_a_row: u64,
    stop: bool,
    /// The evaluator has no higher fidelity: successive halving is off.
    no_promotions: bool,
}

/// A gated candidate waiting for evaluation.
struct Pending {
    id: TrialId,
    candidate: Candidate,
    assessment: Assessment,
    seed: u64,
}

/// One batch after the cost gate.
#[derive(Default)]
struct Gated {
    to_eval: Vec<Pending>,
    /// Repeats of a candidate evaluated in this same batch: (trial, key, first trial).
    deferred: Vec<(TrialId, String, TrialId)>,
}

/// One finished evaluation: metrics or failure, seconds.
struct Evaluated {
    pending: Pending,
    result: Result<Metrics, String>,
    seconds: f64,
}

fn opt_err(during: &'static str) -> impl Fn(danas_optim::OptimError) -> SearchError {
    move |source| SearchError::Optimizer { during, source }
}

impl Search {
    pub(crate) fn drive(mut self, journal: Journal, resumed: bool) -> Result<SearchSummary, SearchError> {
        let clock = Clock { prior: journal.elapsed_seconds()?, started: Instant::now() };
        let mut st = State {
            journal,
            clock,
            progress: Progress { budget: self.budget, ..Progress::default() },
            queue: Vec::new(),
            memo: BTreeMap::new(),
            ready: BTreeSet::new(),
            broken: BTreeMap::new(),
            repeats_in_a_row: 0,
            stop: false,
            no_promotions: false,
        };
        let mut told = if resumed { self.replay(&mut st)? } else { BTreeMap::new() };
        if !resumed {
            st.journal.event("start", &format!("space {}, optimizer {}", self.space.name(), self.optimizer.name()))?;
        }
        for t in st.journal.trials()? {
            tally(&mut st.progress, &t, &self.accuracy);
            if t.status == TrialStatus::Complete
                && let Some(o) = told.remove(&TrialId(t.id))
            {
                st.memo.entry(candidate_key(&t.candidate)).or_insert((t.id, o));
            }
        }
        st.progress.promotions = st.journal.rungs()?.len() as u64;
        st.progress.elapsed = st.clock.now();
        st.stop = self.emit(&SearchEvent::Started { resumed, progress: &st.progress }) == Control::Stop;
        let infeasible_cap =
            self.budget.max_trials.map(|m| m.saturating_mul(MAX_INFEASIBLE_PER_EVAL).saturating_add(1000));

        let mut out_of_candidates = false;
        while !st.stop && !self.budget.exhausted(st.progress.evaluated, st.clock.now()) {
            if infeasible_cap.is_some_and(|cap| st.progress.infeasible >= cap) {
                st.journal.event("stop", "the optimiser keeps proposing infeasible candidates")?;
                break;
            }
            if st.repeats_in_a_row >= MAX_REPEATS_IN_A_ROW {
                let n = st.repeats_in_a_row;
                st.journal.event(
                    "stop",
                    &format!(
                        "the optimiser proposed {n} candidates in a row that were already evaluated \
                         (the space looks exhausted)"
                    ),
                )?;
                out_of_candidates = true;
                break;
            }
            if !self.halving.rungs.is_empty() {
                self.promote_all(&mut st)?;
                if st.stop || self.budget.exhausted(st.progress.evaluated, st.clock.now()) {
                    break;
                }
            }
            let batch = self.propose(&mut st)?;
            let gated = self.gate(&mut st, batch)?;
            self.prepare_supernets(&mut st, &gated.to_eval)?;
            let results = self.evaluate(&st, gated.to_eval);
            self.settle(&mut st, results, gated.deferred)?;
        }

        // A search that ran out of trials (not of time) finishes the promotions still due;
        // one that ran out of candidates spends the time left at the top rung.
        if !self.halving.rungs.is_empty() {
            self.promote_all(&mut st)?;
            if out_of_candidates {
                self.widen_all(&mut st)?;
            }
        }
        st.progress.elapsed = st.clock.now();
        st.journal.set_meta("elapsed_seconds", &st.progress.elapsed.as_secs_f64().to_string())?;
        self.emit(&SearchEvent::Finished { progress: &st.progress });
        let done = format!("{} evaluated, {} infeasible", st.progress.evaluated, st.progress.infeasible);
        st.journal.event("finish", &done)?;
        if self.final_top_k > 0 {
            self.final_stage(&mut st.journal)?;
        }
        if st.journal.is_shared() {
            // workers of a shared study stop when they see this
            st.journal.set_meta("finished", "1")?;
        }
        let trials = st.journal.trials()?;
        let board = self.cost.deploy_profile();
        let outputs = write_outputs_on(&self.dir, &trials, self.cost.limits().as_ref(), board.as_ref())?;
        Ok(SearchSummary { dir: self.dir.clone(), progress: st.progress, trials, outputs })
    }

    /// Rebuilds the optimiser by replaying the journaled asks and tells, forgets
    /// interrupted trials and queues what was asked and never told. Returns the
    /// outcome told for each trial (for answering repeats).
    fn replay(&mut self, st: &mut State) -> Result<BTreeMap<TrialId, Outcome>, SearchError> {
        let events: Vec<Event> = st
            .journal
            .optimizer_events()?
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                serde_json::from_value(v).map_err(|source| SearchError::Json {
                    path: st.journal.path().to_path_buf(),
                    what: format!("optimizer event {i}"),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        let log = danas_optim::Journal { events };
        danas_optim::replay(self.optimizer.as_mut(), &log).map_err(opt_err("replay of the journal"))?;
        for t in st.journal.interrupted()? {
            st.journal.forget_running(t.id)?;
        }
        st.queue = log.untold();
        st.journal.event("resume", &format!("{} trials re-queued", st.queue.len()))?;
        Ok(log.told())
    }

    /// The next batch: re-queued proposals first, else a journaled ask.
    fn propose(&mut self, st: &mut State) -> Result<Vec<Proposal>, SearchError> {
        if !st.queue.is_empty() {
            let k = self.parallel.min(st.queue.len());
            return Ok(st.queue.drain(..k).collect());
        }
        let left = self.budget.max_trials.map_or(u64::MAX, |m| m.saturating_sub(st.progress.evaluated));
        let n = (self.parallel as u64).min(left).max(1) as usize;
        let props = self.optimizer.ask(n).map_err(opt_err("ask"))?;
        let ev = serde_json::to_value(Event::Ask { n, proposals: props.clone() }).unwrap_or(Value::Null);
        st.journal.record_optimizer_event(&ev)?;
        Ok(props)
    }

    /// Decodes a batch, answers repeats from the journal and gates the rest on cost:
    /// infeasible candidates cost no training.
    fn gate(&mut self, st: &mut State, batch: Vec<Proposal>) -> Result<Gated, SearchError> {
        let mut gated = Gated::default();
        // Candidates of this batch that will be evaluated, by key.
        let mut pending: BTreeMap<String, TrialId> = BTreeMap::new();
        for p in batch {
            let cand = self.space.candidate(&p.genome).map_err(SearchError::Genome)?;
            let seed = Self::trial_seed(self.seed, p.id.0);
            st.journal.begin_trial(p.id.0, &p.genome.0, &cand, seed)?;
            let key = candidate_key(&cand);
            if let Some((orig, outcome)) = st.memo.get(&key).cloned() {
                st.repeats_in_a_row += 1;
                self.repeat(st, p.id, orig, outcome)?;
                continue;
            }
            if let Some(&first) = pending.get(&key) {
                gated.deferred.push((p.id, key, first));
                continue;
            }
            match self.cost.assess(&cand) {
                Err(e) => {
                    let msg = e.to_string();
                    let end = TrialEnd::failed(None, &msg, None);
                    self.finish(st, p.id, &end, Outcome::Failed(msg.clone()))?;
                }
                Ok(a) if !a.feasibility.is_feasible() => {
                    let msg = a.feasibility.summary();
                    let end = TrialEnd {
                        status: TrialStatus::Infeasible,
                        costs: Some(&a.costs),
                        metrics: None,
                        message: Some(&msg),
                        eval_seconds: Some(0.0),
                    };
                    st.repeats_in_a_row = 0;
                    self.finish(st, p.id, &end, Outcome::Infeasible(a.feasibility.violations().to_vec()))?;
                }
                Ok(assessment) => {
                    pending.insert(key, p.id);
                    gated.to_eval.push(Pending { id: p.id, candidate: cand, assessment, seed });
                }
            }
        }
        Ok(gated)
    }

    /// Successive halving: promotes, round after round, until nothing is due (or the
    /// wall-clock budget is spent, or an observer stops the search). Each search
    /// step starts from a journal with nothing due, so a study stopped between
    /// rounds resumes to the same promotions as one never stopped.
    fn promote_all(&mut self, st: &mut State) -> Result<(), SearchError> {
        while !st.stop && self.budget.wall.is_none_or(|w| st.clock.now() < w) && self.promote(st)? {}
        Ok(())
    }

    /// The space is exhausted and the wall-clock budget is not: rather than end
    /// early, promote the best trials not yet at the top rung straight to it, up to
    /// `parallel` at once, until the budget ends or every trial is there (a budget
    /// of trials, or none, ends the search as before).
    fn widen_all(&mut self, st: &mut State) -> Result<(), SearchError> {
        let Some(wall) = self.budget.wall else { return Ok(()) };
        let mut announced = false;
        while !st.stop && !st.no_promotions && st.clock.now() < wall {
            let trials = st.journal.trials()?;
            let due = self.halving.widen(&trials, self.parallel);
            if due.is_empty() {
                break;
            }
            if !announced {
                let left = wall.saturating_sub(st.clock.now()).as_secs_f64();
                let top = self.halving.rungs.len();
                let msg = format!("no new candidates with {left:.0} s of the budget left: widening rung {top}");
                st.journal.event("halving", &msg)?;
                if self.emit(&SearchEvent::Phase(&msg)) == Control::Stop {
                    st.stop = true;
                    break;
                }
                announced = true;
            }
            if !self.run_promotions(st, &trials, &due)? {
                break;
            }
        }
        Ok(())
    }

    /// One round of successive halving: scores the trials due at higher rungs, up
    /// to `parallel` at once, and journals each result. Returns whether anything was due.
    fn promote(&mut self, st: &mut State) -> Result<bool, SearchError> {
        if st.no_promotions {
            return Ok(false);
        }
        let trials = st.journal.trials()?;
        let due = self.halving.due(&trials, self.parallel);
        if due.is_empty() {
            return Ok(false);
        }
        self.run_promotions(st, &trials, &due)
    }

    /// Scores `due` (trial index, rung, promotion) at once and journals each result.
    /// Returns false when the evaluator has no higher fidelity.
    fn run_promotions(
        &mut self,
        st: &mut State,
        trials: &[TrialRecord],
        due: &[(usize, u32, Promotion)],
    ) -> Result<bool, SearchError> {
        let evaluator = &self.evaluator;
        let results: Vec<(Result<Option<Metrics>, String>, f64)> = fan_out(due, due.len(), |&(i, _, promotion)| {
            let t = &trials[i];
            let t0 = Instant::now();
            let r = evaluator.promote(&t.candidate, promotion, t.seed).map_err(|e| e.to_string());
            (r, t0.elapsed().as_secs_f64())
        })
        .into_iter()
        .map(|r| r.unwrap_or_else(|what| (Err(format!("the promotion panicked: {what}")), 0.0)))
        .collect();
        for (&(i, rung, promotion), (result, seconds)) in due.iter().zip(results) {
            let id = trials[i].id;
            match result.and_then(|m| match m.as_ref().and_then(|m| m.first_non_finite()) {
                Some((k, v)) => Err(format!("the promotion returned a non-finite {k} ({v})")),
                None => Ok(m),
            }) {
                Ok(Some(m)) => {
                    let now = st.clock.now().as_secs_f64();
                    let rec = st.journal.record_rung(id, rung, promotion, &m, seconds, now)?;
                    st.progress.promotions += 1;
                    st.progress.elapsed = st.clock.now();
                    if self.emit(&SearchEvent::Promoted { record: &rec, progress: &st.progress }) == Control::Stop {
                        st.stop = true;
                    }
                }
                Ok(None) => {
                    st.journal.event("halving", "the evaluator has no higher fidelity: the proxy ranks alone")?;
                    st.no_promotions = true;
                    return Ok(false);
                }
                Err(e) => {
                    // recorded as a rung result without metrics would hide it; keep the trial where it is
                    st.journal.event("promotion-failed", &format!("trial {id}, rung {rung} ({promotion}): {e}"))?;
                    let failed = danas_core::Metrics::new().with("promotion_failed", 1.0);
                    let now = st.clock.now().as_secs_f64();
                    st.journal.record_rung(id, rung, promotion, &failed, seconds, now)?;
                }
            }
        }
        Ok(true)
    }

    /// Adds `data` to the supernets to prepare unless it is ready, broken or planned.
    fn plan_supernet(
        &mut self,
        st: &mut State,
        data: DataConfig,
        why: &str,
        todo: &mut Vec<(DataConfig, Option<String>)>,
    ) -> Result<(), SearchError> {
        if st.ready.contains(&data) || st.broken.contains_key(&data) || todo.iter().any(|(d, _)| *d == data) {
            return Ok(());
        }
        let existing = st.journal.supernet(&data.key())?.map(|r| r.path);
        let verb = if existing.is_some() { "loading" } else { "training" };
        if self.emit(&SearchEvent::Phase(&format!("{verb} supernet {data}{why}"))) == Control::Stop {
            st.stop = true;
        }
        todo.push((data, existing));
        Ok(())
    }

    /// Prepares (trains or loads) the supernets a batch needs, up to `parallel` at once.
    fn prepare_supernets(&mut self, st: &mut State, to_eval: &[Pending]) -> Result<(), SearchError> {
        let needed: BTreeSet<DataConfig> = to_eval.iter().map(|t| t.candidate.data).collect();
        let mut todo: Vec<(DataConfig, Option<String>)> = Vec::new();
        for data in needed {
            self.plan_supernet(st, data, "", &mut todo)?;
        }
        // Threads a short batch leaves idle prepare the space's other data configurations.
        if !todo.is_empty() && todo.len() < self.parallel && self.evaluator.prepare_ahead() {
            for data in self.space.data_configs() {
                if todo.len() >= self.parallel {
                    break;
                }
                self.plan_supernet(st, data, " ahead", &mut todo)?;
            }
        }
        for chunk in todo.chunks(self.parallel.max(1)) {
            let observers = std::sync::Mutex::new(&mut self.observers);
            let status = |msg: &str| {
                if let Ok(mut obs) = observers.lock() {
                    for o in obs.iter_mut() {
                        o.on_event(&SearchEvent::Phase(msg));
                    }
                }
            };
            let (evaluator, dir) = (&self.evaluator, &self.dir);
            let prepared: Vec<Result<Prepared, String>> = fan_out(chunk, chunk.len(), |(data, existing)| {
                evaluator.prepare(*data, dir, existing.as_deref(), &status).map_err(|e| e.to_string())
            })
            .into_iter()
            .map(|r| r.unwrap_or_else(|what| Err(format!("supernet preparation panicked: {what}"))))
            .collect();
            for ((data, existing), result) in chunk.iter().zip(prepared) {
                match result {
                    Ok(prep) => {
                        if let Some(ck) = &prep.checkpoint
                            && existing.as_deref() != Some(ck.as_str())
                        {
                            st.journal.record_supernet(&data.key(), ck, prep.seconds)?;
                        }
                        st.journal.event("supernet", &format!("{data} ready after {:.1} s", prep.seconds))?;
                        st.ready.insert(*data);
                    }
                    Err(e) => {
                        st.journal.event("supernet-failed", &format!("{data}: {e}"))?;
                        st.broken.insert(*data, format!("supernet for {data} failed: {e}"));
                    }
                }
            }
            // Supernet training counts against the wall-clock budget, also after a crash.
            st.journal.set_meta("elapsed_seconds", &st.clock.now().as_secs_f64().to_string())?;
        }
        Ok(())
    }

    /// Evaluates a batch in parallel. A panicking evaluation fails its trial, not the search.
    fn evaluate(&self, st: &State, to_eval: Vec<Pending>) -> Vec<Evaluated> {
        let (evaluator, broken) = (&self.evaluator, &st.broken);
        let results = fan_out(&to_eval, to_eval.len(), |pending| {
            let t0 = Instant::now();
            let r = match broken.get(&pending.candidate.data) {
                Some(msg) => Err(msg.clone()),
                None => evaluator.evaluate(&pending.candidate, pending.seed).map_err(|e| e.to_string()),
            };
            (r, t0.elapsed().as_secs_f64())
        });
        to_eval
            .into_iter()
            .zip(results)
            .map(|(pending, r)| {
                let (r, seconds) = r.unwrap_or_else(|what| (Err(format!("the evaluation panicked: {what}")), 0.0));
                let result = r.and_then(|m| match m.first_non_finite() {
                    Some((k, v)) => Err(format!("the evaluation returned a non-finite {k} ({v})")),
                    None => Ok(m),
                });
                Evaluated { pending, result, seconds }
            })
            .collect()
    }

    /// Commits a batch's evaluations, then the repeats deferred behind them.
    fn settle(
        &mut self,
        st: &mut State,
        results: Vec<Evaluated>,
        deferred: Vec<(TrialId, String, TrialId)>,
    ) -> Result<(), SearchError> {
        for Evaluated { pending, result, seconds } in results {
            st.repeats_in_a_row = 0;
            let costs = &pending.assessment.costs;
            match result {
                Ok(m) => {
                    // What the optimiser is told: the cost estimates and the evaluation's metrics.
                    let mut all = costs.metrics();
                    all.extend(&m);
                    let key = candidate_key(&pending.candidate);
                    st.memo.entry(key).or_insert((pending.id.0, Outcome::Complete(all.clone())));
                    let end = TrialEnd {
                        status: TrialStatus::Complete,
                        costs: Some(costs),
                        metrics: Some(&m),
                        message: None,
                        eval_seconds: Some(seconds),
                    };
                    self.finish(st, pending.id, &end, Outcome::Complete(all))?;
                }
                Err(msg) => {
                    let end = TrialEnd::failed(Some(costs), &msg, Some(seconds));
                    self.finish(st, pending.id, &end, Outcome::Failed(msg.clone()))?;
                }
            }
        }
        for (id, key, first) in deferred {
            match st.memo.get(&key).cloned() {
                Some((orig, outcome)) => self.repeat(st, id, orig, outcome)?,
                None => {
                    // Its twin in this batch failed: so does the repeat, without a second try.
                    let msg = format!("repeat of trial {}, which failed", first.0);
                    let end = TrialEnd::failed(None, &msg, Some(0.0));
                    self.finish(st, id, &end, Outcome::Failed(msg.clone()))?;
                }
            }
        }
        Ok(())
    }

    /// Commits a trial's end (with the optimiser's tell event, in one transaction),
    /// tells the optimiser, updates progress and notifies observers; an observer's
    /// stop request stops the loop after this batch.
    fn finish(&mut self, st: &mut State, id: TrialId, end: &TrialEnd<'_>, outcome: Outcome) -> Result<(), SearchError> {
        let tell = serde_json::to_value(Event::Tell { id, outcome: outcome.clone() }).unwrap_or(Value::Null);
        st.journal.finish_trial(id.0, end, st.clock.now().as_secs_f64(), Some(&tell))?;
        self.optimizer.tell(id, outcome).map_err(opt_err("tell"))?;
        let record = st.journal.trial(id.0)?.ok_or(SearchError::UnknownTrial(id.0))?;
        tally(&mut st.progress, &record, &self.accuracy);
        st.progress.elapsed = st.clock.now();
        if self.emit(&SearchEvent::Trial { record: &record, progress: &st.progress }) == Control::Stop {
            st.stop = true;
        }
        Ok(())
    }

    /// Ends trial `id`, a repeat of the evaluated trial `orig`: journals the earlier
    /// costs and metrics under status [`TrialStatus::Repeat`] and tells the optimiser
    /// the earlier outcome again. Nothing is trained.
    fn repeat(&mut self, st: &mut State, id: TrialId, orig: u64, outcome: Outcome) -> Result<(), SearchError> {
        let rec = st.journal.trial(orig)?.ok_or(SearchError::UnknownTrial(orig))?;
        let msg = format!("repeat of trial {orig}: its result is reused");
        let end = TrialEnd {
            status: TrialStatus::Repeat,
            costs: rec.costs.as_ref(),
            metrics: rec.metrics.as_ref(),
            message: Some(&msg),
            eval_seconds: Some(0.0),
        };
        self.finish(st, id, &end, outcome)
    }
}

/// Adds a journaled trial to the progress counters.
fn tally(progress: &mut Progress, t: &TrialRecord, accuracy: &str) {
    match t.status {
        TrialStatus::Complete => {
            progress.evaluated += 1;
            if let Some(a) = t.metrics.as_ref().and_then(|m| m.value(accuracy)) {
                progress.best_feasible = Some(progress.best_feasible.map_or(a, |b| b.max(a)));
            }
        }
        TrialStatus::Failed => {
            progress.evaluated += 1;
            progress.failed += 1;
        }
        TrialStatus::Infeasible => progress.infeasible += 1,
        TrialStatus::Repeat => progress.repeats += 1,
        TrialStatus::Running => {}
    }
}
