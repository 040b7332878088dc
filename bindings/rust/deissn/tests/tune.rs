//! deissn::tune on the analytic Gaussian model: plans learned, kept by the table through
//! save/load, and sampled with Preset::Tuned.
mod common;

use common::gaussian_eps;
use deissn::{ErrorKind, Model, Noise, NormTable, Prediction, Preset, Sampler, SamplerParams,
             Schedule, TimeConvention, TuneParams};

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
    assert!(rmse < 5.0 * plan.error_high && rmse < plan.best_error / 10.0, "{rmse} {plan:?}");

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
