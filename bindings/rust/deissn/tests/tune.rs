//! deissn::tune on the analytic Gaussian model: plans learned, kept by the table through
//! save/load, and sampled with Preset::Tuned; the run split into Reference parts, merged, and
//! searched with tune_reference.
mod common;

use common::gaussian_eps;
use deissn::{ErrorKind, Model, Noise, NormTable, Prediction, Preset, Reference, Sampler,
             SamplerParams, Schedule, TimeConvention, TuneParams};

const S: f64 = 0.5;

fn model() -> Model {
    let schedule = Schedule::builder().build().unwrap();
    Model::from_fn(TimeConvention::Tau, move |x, _shape, tau, out| {
        gaussian_eps(&schedule, tau, S, x, out);
        Ok(())
    })
    .unwrap()
}

fn small() -> TuneParams {
    TuneParams { nfe_min: 3, nfe_max: 4, grid_steps: 40, fit_samples: 8, holdout_samples: 8,
                 batch: 8, ..TuneParams::default() }
}

#[test]
fn defaults_are_the_librarys() {
    let d = TuneParams::default();
    assert_eq!((d.nfe_min, d.nfe_max, d.grid_steps, d.fit_samples, d.holdout_samples, d.batch),
               (3, 25, 400, 128, 256, 64));
}

#[test]
fn tune_plans_round_trip_and_sample() {
    let m = model();
    let table = deissn::tune(&m, &Schedule::builder(), None, &[2, 3], &small()).unwrap();
    let plans = table.plans();
    assert_eq!(plans.iter().map(|p| p.nfe).collect::<Vec<_>>(), vec![3, 4]);
    for p in &plans {
        assert_eq!(p.taus.len(), p.nfe as usize);
        assert_eq!(p.taus[0], 1.0);
        assert!(p.error_low <= p.error && p.error <= p.error_high && p.error < p.best_error, "{p:?}");
        assert_eq!(p.samples, 8);
    }
    // save / load keeps every field
    let dir = std::env::temp_dir().join(format!("deissn-rust-tune-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.dsn");
    table.save(&path).unwrap();
    let loaded = NormTable::load(&path, 0).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(loaded.plans(), plans);
    assert_eq!(loaded.with_plans(&plans[1..]).unwrap().plans(), plans[1..].to_vec());
    assert!(loaded.with_plans(&[]).unwrap().plans().is_empty());

    // Tuned: the plan's times and configuration, with the table where the plan uses it
    let (schedule, params, use_table) =
        Preset::Tuned.apply(Schedule::builder(), 4, Some(&loaded)).unwrap();
    let schedule = schedule.build().unwrap();
    let plan = &plans[1];
    let mut want = plan.taus.clone();
    want.push(plan.tau_end);
    assert_eq!(schedule.times(), want);
    assert_eq!((params.method, params.order), (plan.method, plan.order));
    assert_eq!(use_table, plan.uses_table);
    let mut sampler = Sampler::new(&schedule, use_table.then_some(&loaded), &params).unwrap();
    let n = 64 * 6;
    let mut x = vec![0f32; n];
    deissn::fill_noise(123, 0, 6, &mut x).unwrap();
    let abar1 = Schedule::builder().build().unwrap().alpha_bar(1.0);
    let scale = S / (abar1 * S * S + 1.0 - abar1).sqrt(); // the exact ODE solution is linear
    let exact: Vec<f64> = x.iter().map(|&v| v as f64 * scale).collect();
    sampler.sample(&m, &mut x, &[64, 2, 3]).unwrap();
    let rmse = (x.iter().zip(&exact).map(|(&a, &b)| (a as f64 - b).powi(2)).sum::<f64>()
                / n as f64).sqrt();
    // plan.error is measured against the tuner's reference solve, itself ~1e-4 from the exact
    // solution here: a learned plan can match the reference far closer than that
    assert!(rmse < (5.0 * plan.error_high).max(1e-3) && rmse < plan.best_error / 10.0,
            "{rmse} {plan:?}");

    // the nearest tuned NFE below; Best below the plans
    let (s9, ..) = Preset::Tuned.apply(Schedule::builder(), 9, Some(&loaded)).unwrap();
    assert_eq!(s9.build().unwrap().steps(), 4);
    let (s2, p2, u2) = Preset::Tuned.apply(Schedule::builder(), 2, Some(&loaded)).unwrap();
    let (b2, bp2, bu2) = Preset::Best.apply(Schedule::builder(), 2, Some(&loaded)).unwrap();
    assert_eq!((s2.build().unwrap().times(), p2, u2), (b2.build().unwrap().times(), bp2, bu2));

    // plans tuned for the linear schedule are refused on another
    let cosine = Schedule::builder().noise(Noise::SquaredCosCapV2);
    let err = Preset::Tuned.apply(cosine.clone(), 3, Some(&loaded)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Mismatch, "{}", err.message());
    let allow = SamplerParams { allow_table_mismatch: true, prediction: Prediction::V,
                                ..SamplerParams::default() };
    let (c3, cp, _) = Preset::Tuned.apply_to(cosine.clone(), &allow, 3, Some(&loaded)).unwrap();
    assert_eq!(c3.build().unwrap().steps(), 3);
    assert!(cp.allow_table_mismatch && cp.prediction == Prediction::V && cp.order == plans[0].order);
    let err = deissn::tune(&m, &cosine, Some(&loaded), &[2, 3], &small()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Mismatch, "{}", err.message());

    // a bad plan is named
    let mut bad = plans[0].clone();
    bad.taus.pop();
    let err = loaded.with_plans(&[bad]).unwrap_err();
    assert!(err.message().contains("plans[0]"), "{}", err.message());
}

#[test]
fn tune_progress_stops_and_model_errors_reach_the_caller() {
    let m = model();
    let mut calls = 0;
    let err = deissn::tune_with_progress(&m, &Schedule::builder(), None, &[2, 3], &small(),
                                         |_, _| { calls += 1; calls < 3 }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Callback);
    assert_eq!(calls, 3);
    let failing = Model::from_fn(TimeConvention::Tau, |_, _, _, _| Err("no eps today".into())).unwrap();
    let err = deissn::tune(&failing, &Schedule::builder(), None, &[2, 3], &small()).unwrap_err();
    assert!(err.message().contains("no eps today"), "{}", err.message());
    let err = deissn::tune(&m, &Schedule::builder(), None, &[2, 3],
                           &TuneParams { nfe_min: 5, nfe_max: 3, ..small() }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn presets_use_the_table_only_where_measured_with_it_and_custom_noise() {
    let table = NormTable::from_knots(&[0.0, 1.0], &[0.5, 0.8]).unwrap();
    for nfe in [5, 6, 8, 10, 15, 20] {
        let (_, p, use_table) = Preset::Best.apply(Schedule::builder(), nfe, Some(&table)).unwrap();
        assert_eq!(use_table, p.method == deissn::Method::Eps, "nfe {nfe}");
    }
    // BEST at 15 is log-SNR to tau_end > 0: its tau_min_eval depends on the noise schedule,
    // custom arrays included (they reach the C preset)
    let linear = Schedule::builder().build().unwrap();
    let abar: Vec<f64> = (1..=1000).map(|k| linear.alpha_bar(k as f64 / 1000.0).powf(0.5)).collect();
    let custom = Schedule::builder().alphas_cumprod(abar.clone());
    let (s, ..) = Preset::Best.apply(custom.clone(), 15, None).unwrap();
    let (l, ..) = Preset::Best.apply(Schedule::builder(), 15, None).unwrap();
    let (s, l) = (s.build().unwrap().times(), l.build().unwrap().times());
    assert_ne!(s[14], l[14]);
    assert_eq!(s.len(), 16);
}

// ---- Reference: the run split across processes -------------------------------------------

/// small() in batches of 4: 16 trajectories, 4 batches.
fn run() -> TuneParams {
    TuneParams { batch: 4, ..small() }
}

fn solve(m: &Model, first: u64, count: Option<u64>) -> deissn::Result<Reference> {
    Reference::solve(m, &Schedule::builder(), &[2, 3], &run(), first, count)
}

/// The parts' bytes, read back (as a worker's would be) and merged in the given order.
fn merged_bytes(parts: &[Reference]) -> Vec<u8> {
    let read: Vec<Reference> =
        parts.iter().map(|p| Reference::from_bytes(&p.to_bytes()).unwrap()).collect();
    Reference::merge(&read.iter().collect::<Vec<_>>()).unwrap().to_bytes()
}

#[test]
fn reference_parts_merged_are_the_whole_solve_and_tune_to_its_plans() {
    let m = model();
    let whole = solve(&m, 0, None).unwrap();
    assert_eq!(whole.range(), (0, 16, 16));
    assert_eq!(format!("{whole:?}"), "Reference { first: 0, count: 16, total: 16 }");
    let want = whole.to_bytes();
    // at batch boundaries, merged out of order
    let parts = [solve(&m, 8, None).unwrap(), solve(&m, 0, Some(4)).unwrap(),
                 solve(&m, 4, Some(4)).unwrap()];
    assert_eq!(parts.iter().map(Reference::range).collect::<Vec<_>>(),
               vec![(8, 8, 16), (0, 4, 16), (4, 4, 16)]);
    assert!(merged_bytes(&parts) == want, "parts at batch boundaries differ from the whole");
    // across them (this model's eps does not depend on its batch), and one part of all
    let parts = [solve(&m, 7, None).unwrap(), solve(&m, 2, Some(5)).unwrap(),
                 solve(&m, 0, Some(2)).unwrap()];
    assert!(merged_bytes(&parts) == want, "parts across batch boundaries differ from the whole");
    assert!(merged_bytes(&[whole]) == want);

    // the search: tune()'s plans exactly, with and without a table; batch only shapes solves
    let whole = Reference::from_bytes(&want).unwrap();
    let noise = Schedule::builder();
    let tuned = deissn::tune(&m, &noise, None, &[2, 3], &run()).unwrap();
    let table = deissn::tune_reference(&m, &noise, None, &whole, &small()).unwrap();
    assert_eq!(table.plans(), tuned.plans());
    assert_eq!(table.knots(), tuned.knots()); // the reference's calibration sums' table
    let given = NormTable::from_knots(&[0.0, 1.0], &[0.5, 0.8]).unwrap();
    let mut searched = 0;
    let table = deissn::tune_reference_with_progress(&m, &noise, Some(&given), &whole, &run(),
                                                     |_, _| { searched += 1; true }).unwrap();
    assert_eq!(table.plans(),
               deissn::tune(&m, &noise, Some(&given), &[2, 3], &run()).unwrap().plans());
    assert_eq!(table.knots(), given.knots());
    assert!(searched > 0);

    // immutable, so threads may share it
    std::thread::scope(|s| {
        let h = s.spawn(|| whole.to_bytes());
        assert!(h.join().unwrap() == want);
    });
}

#[test]
fn reference_parts_at_batch_boundaries_keep_a_batch_dependent_models_bits() {
    // eps depends on the batch's size, as with batch statistics in the model
    let schedule = Schedule::builder().build().unwrap();
    let m = Model::from_fn(TimeConvention::Tau, move |x, shape, tau, out| {
        gaussian_eps(&schedule, tau, S, x, out);
        out.iter_mut().for_each(|e| *e += 1e-3 * shape[0] as f32);
        Ok(())
    })
    .unwrap();
    let want = solve(&m, 0, None).unwrap().to_bytes();
    let aligned = [solve(&m, 12, None).unwrap(), solve(&m, 0, Some(12)).unwrap()];
    assert!(merged_bytes(&aligned) == want, "parts at batch boundaries differ from the whole");
    // what the test would see if parts were batched by themselves: other bits
    let across = [solve(&m, 6, None).unwrap(), solve(&m, 0, Some(6)).unwrap()];
    assert!(merged_bytes(&across) != want, "the model's eps does not depend on its batch");
}

#[test]
fn reference_errors_name_what_is_wrong() {
    let m = model();
    let noise = Schedule::builder();
    let part = solve(&m, 0, Some(4)).unwrap();
    let msg = |e: deissn::Error, kind: ErrorKind, has: &str| {
        assert_eq!(e.kind(), kind, "{}", e.message());
        assert!(e.message().contains(has), "{:?} lacks {has:?}", e.message());
    };
    // an incomplete reference, its range named
    msg(deissn::tune_reference(&m, &noise, None, &part, &run()).unwrap_err(),
        ErrorKind::InvalidArgument, "0..3");
    // ranges beyond the run
    msg(solve(&m, 0, Some(0)).unwrap_err(), ErrorKind::InvalidArgument, "count is Some(0)");
    msg(solve(&m, 16, None).unwrap_err(), ErrorKind::InvalidArgument, "0..15");
    msg(solve(&m, 12, Some(5)).unwrap_err(), ErrorKind::InvalidArgument, "0..15");
    msg(solve(&m, u64::MAX, Some(2)).unwrap_err(), ErrorKind::InvalidArgument, "0..15");
    // merging: overlaps, gaps, another run, nothing
    msg(Reference::merge(&[&part, &part]).unwrap_err(), ErrorKind::Mismatch, "overlap");
    let last = solve(&m, 8, None).unwrap();
    msg(Reference::merge(&[&part, &last]).unwrap_err(), ErrorKind::Mismatch, "4..7");
    let other = Reference::solve(&m, &noise, &[2, 3], &TuneParams { seed: 1, ..run() }, 4, None)
        .unwrap();
    msg(Reference::merge(&[&part, &other]).unwrap_err(), ErrorKind::Mismatch, "seed");
    msg(Reference::merge(&[]).unwrap_err(), ErrorKind::InvalidArgument, "");
    // bytes: truncated, not a reference
    let data = part.to_bytes();
    msg(Reference::from_bytes(&data[..data.len() - 1]).unwrap_err(), ErrorKind::Format,
        "truncated");
    msg(Reference::from_bytes(&[]).unwrap_err(), ErrorKind::Format, "");
    let mut zip = b"PK\x03\x04".to_vec();
    zip.resize(200, 0);
    msg(Reference::from_bytes(&zip).unwrap_err(), ErrorKind::Format,
        "not a libdeissn tuning reference");
    // a search with another run's params
    let whole = Reference::merge(&[&part, &solve(&m, 4, None).unwrap()]).unwrap();
    msg(deissn::tune_reference(&m, &noise, None, &whole, &TuneParams { seed: 1, ..run() })
            .unwrap_err(), ErrorKind::Mismatch, "seed");
    // callbacks: progress stops, a model's error and panic reach the caller
    let mut calls = 0;
    msg(Reference::solve_with_progress(&m, &noise, &[2, 3], &run(), 0, None,
                                       |_, _| { calls += 1; calls < 2 }).unwrap_err(),
        ErrorKind::Callback, "");
    assert_eq!(calls, 2);
    msg(deissn::tune_reference_with_progress(&m, &noise, None, &whole, &run(), |_, _| false)
            .unwrap_err(), ErrorKind::Callback, "");
    let failing = Model::from_fn(TimeConvention::Tau, |_, _, _, _| Err("no eps today".into()))
        .unwrap();
    msg(Reference::solve(&failing, &noise, &[2, 3], &run(), 0, None).unwrap_err(),
        ErrorKind::Callback, "no eps today");
    let panicking = Model::from_fn(TimeConvention::Tau, |_, _, _, _| panic!("model bug")).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Reference::solve(&panicking, &noise, &[2, 3], &run(), 0, None)
    }));
    assert_eq!(caught.unwrap_err().downcast_ref::<&str>(), Some(&"model bug"));
}
