//! Method::Learned: a hand-made learned plan whose weights are DDIM's samples as DDIM does,
//! through Preset::Tuned and a table saved and loaded.
mod common;

use std::sync::Arc;

use common::gaussian_eps;
use deissn::{ErrorKind, Method, Model, NormTable, Plan, Preset, Sampler, SamplerParams,
             Schedule, Spacing, TimeConvention};

const NFE: u32 = 6;

/// DDIM's step as weights: x_to = (alpha_to / alpha_from) x + (sigma_to - w0 sigma_from) eps.
fn ddim_weights(schedule: &Schedule) -> Vec<[f64; 6]> {
    let t = schedule.times();
    let alpha = |tau: f64| schedule.alpha_bar(tau).sqrt();
    let sigma = |tau: f64| (1.0 - schedule.alpha_bar(tau)).sqrt();
    (0..t.len() - 1).map(|i| {
        let w0 = alpha(t[i + 1]) / alpha(t[i]);
        [w0, sigma(t[i + 1]) - w0 * sigma(t[i]), 0.0, 0.0, 0.0, 0.0]
    }).collect()
}

fn learned_plan(schedule: &Schedule) -> Plan {
    let t = schedule.times();
    Plan { nfe: NFE, taus: t[..NFE as usize].to_vec(), tau_end: t[NFE as usize],
           method: Method::Learned, order: 0, corrector: false, lower_order_final: false,
           uses_table: false, samples: 16, error: 0.1, error_low: 0.09, error_high: 0.11,
           best_error: 0.2, weights: ddim_weights(schedule) }
}

fn sample(sampler: &mut Sampler, schedule: &Arc<Schedule>, seed: u64) -> Vec<f32> {
    let s = Arc::clone(schedule);
    let model = Model::from_fn(TimeConvention::Tau, move |x, _, tau, eps| {
        gaussian_eps(&s, tau, 0.5, x, eps);
        Ok(())
    }).unwrap();
    let mut x = vec![0.0f32; 3 * 8];
    deissn::fill_noise(seed, 0, 8, &mut x).unwrap();
    sampler.sample(&model, &mut x, &[3, 8]).unwrap();
    x
}

fn worst(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&p, &q)| (p as f64 - q as f64).abs()).fold(0.0, f64::max)
}

fn ddim(schedule: &Schedule) -> Sampler {
    Sampler::new(schedule, None, &SamplerParams { order: 0, ..Default::default() }).unwrap()
}

#[test]
fn ddims_weights_sample_as_ddim() {
    let schedule = Arc::new(Schedule::builder().spacing(Spacing::Quadratic).steps(NFE).build().unwrap());
    let params = SamplerParams { method: Method::Learned, weights: ddim_weights(&schedule),
                                 ..Default::default() };
    let mut learned = Sampler::new(&schedule, None, &params).unwrap();
    let mut reference = ddim(&schedule);
    let d = worst(&sample(&mut learned, &schedule, 5), &sample(&mut reference, &schedule, 5));
    assert!(d <= 1e-6, "learned with DDIM's weights vs DDIM: {d}");
    let c = learned.coeffs(2).unwrap();
    assert_eq!((c.psi, c.c[0], c.c[1]), (params.weights[2][0], params.weights[2][1], 0.0));

    // refused: a row short, none, with a table, with the corrector
    let short = SamplerParams { weights: params.weights[1..].to_vec(), ..params.clone() };
    let e = Sampler::new(&schedule, None, &short).unwrap_err();
    assert!(e.kind() == ErrorKind::InvalidArgument && e.message().contains("rows"), "{e}");
    let none = SamplerParams { weights: Vec::new(), ..params.clone() };
    let e = Sampler::new(&schedule, None, &none).unwrap_err();
    assert!(e.kind() == ErrorKind::InvalidArgument && e.message().contains("weights"), "{e}");
    let table = NormTable::from_knots(&[0.0, 1.0], &[0.5, 0.8]).unwrap();
    let e = Sampler::new(&schedule, Some(&table), &params).unwrap_err();
    assert!(e.kind() == ErrorKind::InvalidArgument && e.message().contains("table"), "{e}");
    let mut nan = params.clone();
    nan.weights[3][4] = f64::NAN;
    let e = Sampler::new(&schedule, None, &nan).unwrap_err();
    assert!(e.kind() == ErrorKind::InvalidArgument && e.message().contains("step 3"), "{e}");
}

#[test]
fn a_learned_plan_saves_loads_and_samples_through_tuned() {
    let schedule = Arc::new(Schedule::builder().spacing(Spacing::Quadratic).steps(NFE).build().unwrap());
    let plan = learned_plan(&schedule);
    let table = NormTable::from_knots(&[0.0, 0.5, 1.0], &[0.5, 0.7, 0.8]).unwrap()
        .with_plans(&[plan.clone()]).unwrap();
    assert_eq!(table.plans(), [plan.clone()]);
    let dir = std::env::temp_dir().join(format!("deissn-rust-learned-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("learned.dsn");
    table.save(&path).unwrap();
    let loaded = NormTable::load(&path, 0).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let back = loaded.plans();
    assert_eq!(back, [plan.clone()], "the weights round-trip bit for bit");

    let (builder, params, use_table) = Preset::Tuned.apply(Schedule::builder(), NFE, Some(&loaded))
        .unwrap();
    assert_eq!((params.method, &params.weights, use_table), (Method::Learned, &plan.weights, false));
    let tuned = builder.build().unwrap();
    assert_eq!(tuned.times(), schedule.times());
    let mut learned = Sampler::new(&tuned, None, &params).unwrap();
    let d = worst(&sample(&mut learned, &schedule, 9), &sample(&mut ddim(&schedule), &schedule, 9));
    assert!(d <= 1e-6, "Preset::Tuned's learned plan vs DDIM: {d}");

    // a plan's rows of weights: nfe for Method::Learned, none for the others
    let mut bad = plan.clone();
    bad.weights.pop();
    let e = table.with_plans(&[bad]).unwrap_err();
    assert!(e.kind() == ErrorKind::InvalidArgument && e.message().contains("plans[0]"), "{e}");
    let mut eps = plan.clone();
    eps.method = Method::Eps;
    let e = table.with_plans(&[eps]).unwrap_err();
    assert!(e.kind() == ErrorKind::InvalidArgument && e.message().contains("weights"), "{e}");
}
