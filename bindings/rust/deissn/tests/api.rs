//! Errors, the safe API's guarantees, and the example.
mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{gaussian_eps, repo};
use deissn::{ErrorKind, Method, Model, ModelParams, Noise, NormTable, Prediction, Preset,
             Sampler, SamplerParams, Schedule, Spacing, TimeConvention};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn thread_safety_follows_the_header() {
    assert_send_sync::<Schedule>();
    assert_send_sync::<NormTable>();
    assert_send_sync::<Model>();
    assert_send::<Sampler>();
}

#[test]
fn errors_carry_kind_status_and_message() {
    let e = Schedule::builder().steps(0).build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(e.status(), -1);
    assert!(e.message().contains("steps 0"), "{e}");
    assert!(e.to_string().starts_with("invalid argument: "), "{e}");

    let schedule = Schedule::builder().build().unwrap();
    let order4 = SamplerParams { order: 4, ..Default::default() };
    assert_eq!(Sampler::new(&schedule, None, &order4).unwrap_err().kind(), ErrorKind::InvalidArgument);

    let e = NormTable::load("/nonexistent/table.pt", 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.message().contains("/nonexistent/table.pt"));
    let e = NormTable::load(repo().join("tests/data/deis_sn_golden.json"), 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Format);
    assert_eq!(NormTable::from_knots(&[0.0, 1.0], &[1.0]).unwrap_err().kind(), ErrorKind::Size);

    let reference = NormTable::from_reference(&[1.0; 1000], &[1.0; 1000], 0).unwrap();
    let other = Schedule::builder().noise(deissn::Noise::ScaledLinear).build().unwrap();
    let e = Sampler::new(&other, Some(&reference), &SamplerParams::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Mismatch);
    let lenient = SamplerParams { allow_table_mismatch: true, ..Default::default() };
    assert!(Sampler::new(&other, Some(&reference), &lenient).is_ok());
}

#[test]
fn step_errors_leave_the_state_unchanged() {
    let schedule = Schedule::builder().steps(2).build().unwrap();
    let mut sampler = Sampler::new(&schedule, None, &SamplerParams::default()).unwrap();
    let mut x = vec![1.0f32; 4];
    assert_eq!(sampler.step(&mut x, &[0.0; 3]).unwrap_err().kind(), ErrorKind::Size);
    let e = sampler.step(&mut x, &[0.0, f32::NAN, 0.0, 0.0]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NonFinite);
    assert!(e.message().contains("element 1"), "{e}");
    assert_eq!(x, [1.0; 4]);
    assert_eq!(sampler.next_step().unwrap().step, 0);
    while sampler.next_step().is_some() {
        sampler.step(&mut x, &[0.0; 4]).unwrap();
    }
    assert_eq!(sampler.step(&mut x, &[0.0; 4]).unwrap_err().kind(), ErrorKind::State);
}

#[test]
fn parents_may_be_dropped_first_and_samplers_move_threads() {
    let schedule = Schedule::builder().steps(4).build().unwrap();
    let table = NormTable::from_knots(&[0.0, 1.0], &[0.5, 0.8]).unwrap();
    let mut sampler = Sampler::new(&schedule, Some(&table), &SamplerParams::default()).unwrap();
    drop(schedule);
    drop(table);
    let x = std::thread::spawn(move || {
        let mut x = vec![1.0f32; 3];
        while sampler.next_step().is_some() {
            sampler.step(&mut x, &[0.1; 3]).unwrap();
        }
        x
    })
    .join()
    .unwrap();
    assert!(x.iter().all(|v| v.is_finite()));
}

#[test]
fn closure_model_matches_the_step_loop_bit_for_bit() {
    let schedule = Arc::new(Schedule::builder().steps(10).build().unwrap());
    let table = NormTable::from_knots(&[0.0, 0.05, 1.0], &[0.55, 0.8, 0.8]).unwrap();
    let mut sampler = Sampler::new(&schedule, Some(&table), &SamplerParams::default()).unwrap();
    let (shape, numel) = ([4usize, 1, 8, 8], 64);
    let mut x = vec![0.0f32; 4 * numel];
    deissn::fill_noise(1234, 0, numel, &mut x).unwrap();
    let mut y = x.clone();

    let s = Arc::clone(&schedule);
    let model = Model::from_fn(TimeConvention::Tau, move |x, shape, tau, out| {
        assert_eq!(shape, [4, 1, 8, 8]);
        gaussian_eps(&s, tau, 0.5, x, out);
        Ok(())
    })
    .unwrap();
    let calls = AtomicUsize::new(0);
    sampler.sample_with_progress(&model, &mut x, &shape, |_, _| calls.fetch_add(1, Ordering::Relaxed) < 100).unwrap();
    assert_eq!(calls.into_inner(), 10);

    let mut eps = vec![0.0f32; y.len()];
    sampler.reset();
    while let Some(t) = sampler.next_step() {
        gaussian_eps(&schedule, t.tau, 0.5, &y, &mut eps);
        sampler.step(&mut y, &eps).unwrap();
    }
    assert_eq!(x, y);
}

#[test]
fn callback_errors_and_panics() {
    let schedule = Schedule::builder().steps(5).build().unwrap();
    let mut sampler = Sampler::new(&schedule, None, &SamplerParams::default()).unwrap();
    let mut x = vec![0.5f32; 6];
    let failing = Model::from_fn(TimeConvention::ModelIndex, |_, _, t, _| {
        if t < 500.0 { Err(format!("no prediction below t = 500 (asked {t})").into()) } else { Ok(()) }
    })
    .unwrap();
    let e = sampler.sample(&failing, &mut x, &[2, 3]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Callback);
    assert!(e.message().contains("no prediction below t = 500"), "{e}");
    assert_eq!(x, [0.5; 6]);
    assert_eq!(sampler.sample(&failing, &mut x, &[2, 2]).unwrap_err().kind(), ErrorKind::Size);

    let stop = sampler.sample_with_progress(
        &Model::from_fn(TimeConvention::Tau, |_, _, _, out| {
            out.fill(0.0);
            Ok(())
        })
        .unwrap(),
        &mut x, &[2, 3], |step, _| step < 2);
    assert_eq!(stop.unwrap_err().kind(), ErrorKind::Callback);

    let panicking = Model::from_fn(TimeConvention::Tau, |_, _, _, _| panic!("model bug")).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sampler.sample(&panicking, &mut x, &[6])));
    assert_eq!(*caught.unwrap_err().downcast::<&str>().unwrap(), "model bug");
}

#[test]
fn torchscript_model_matches_the_closure() {
    if !deissn::has_torch() {
        println!("skipped: torchscript_model_matches_the_closure: the torch plug-in is not available");
        return;
    }
    let model = Model::load(repo().join("tests/models/gaussian_eps.pt"), &ModelParams::default()).unwrap();
    let schedule = Arc::new(Schedule::builder().build().unwrap());
    let mut sampler = Sampler::new(&schedule, None, &SamplerParams::default()).unwrap();
    let mut x = vec![0.0f32; 2 * 16];
    deissn::fill_noise(7, 0, 16, &mut x).unwrap();
    let mut y = x.clone();
    sampler.sample(&model, &mut x, &[2, 16]).unwrap();
    let s = Arc::clone(&schedule);
    let closure = Model::from_fn(TimeConvention::Tau, move |x, _, tau, out| {
        gaussian_eps(&s, tau, 0.5, x, out);
        Ok(())
    })
    .unwrap();
    sampler.sample(&closure, &mut y, &[2, 16]).unwrap();
    let scale = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() <= 1e-5 * scale));
    assert_eq!(ErrorKind::Model, Model::load(repo().join("tests/models/no_forward.pt"), &ModelParams::default()).unwrap_err().kind());
}

#[test]
fn noise_depends_on_seed_and_index_only() {
    let mut a = vec![0.0f32; 5 * 6];
    deissn::fill_noise(3, 0, 6, &mut a).unwrap();
    let mut b = vec![0.0f32; 2 * 6];
    deissn::fill_noise(3, 3, 6, &mut b).unwrap();
    assert_eq!(&a[18..], &b[..]);
    assert_eq!(deissn::fill_noise(3, 0, 7, &mut b).unwrap_err().kind(), ErrorKind::Size);
}

#[test]
fn table_knots_and_schedule_times() {
    let t = NormTable::from_knots(&[0.0, 0.5, 1.0], &[0.5, 1.0, 1.0]).unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t.knots(), [(0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]);
    assert!((t.eval(0.25) - 0.75).abs() < 1e-15);
    let s = Schedule::builder().taus(vec![0.9, 0.5, 0.1]).tau_end(0.01).build().unwrap();
    assert_eq!(s.times(), [0.9, 0.5, 0.1, 0.01]);
    // the crate's version is the header's (tests/version.rs): the library's major.minor
    let crate_version = env!("CARGO_PKG_VERSION").split('.').take(2).collect::<Vec<_>>();
    assert_eq!(deissn::version().split('.').take(2).collect::<Vec<_>>(), crate_version);
}

#[test]
fn example_builds_and_runs() {
    if !deissn::has_torch() {
        println!("skipped: example_builds_and_runs: the torch plug-in is not available");
        return;
    }
    // cargo builds the examples before the tests; they live next to deps/.
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().unwrap().parent().unwrap().join("examples/sample");
    let out = std::env::temp_dir().join(format!("deissn-example-{}.pgm", std::process::id()));
    let model = repo().join("tests/models/gaussian_eps.pt");
    let run = Command::new(&example).arg(&model).arg("none").arg(&out).arg("8").output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let pgm = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert!(pgm.starts_with(b"P5\n32 32\n255\n") && pgm.len() == 13 + 32 * 32);

    let missing = Command::new(&example).arg("/nonexistent/model.pt").output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("is absent"));
}

#[test]
fn presets_set_the_sampling_fields() {
    // Reference is the builder's and SamplerParams' defaults.
    // One call applies a preset to both halves.
    let (reference, params, use_table) = Preset::Reference.apply(Schedule::builder(), 12, None).unwrap();
    assert!(use_table); // DEIS-SN: a table, when the caller has one, goes to the sampler
    let default = Schedule::builder().steps(12).build().unwrap();
    assert_eq!(reference.build().unwrap().times(), default.times());
    assert_eq!(params, SamplerParams::default());
    // Best has its own times for the same NFE, and keeps the noise schedule it was given;
    // at 10 NFE it is the x0 method with the corrector (docs/presets.md).
    let cosine = Schedule::builder().noise(Noise::SquaredCosCapV2);
    let (best, ..) = Preset::Best.apply(cosine.clone(), 12, None).unwrap();
    let best = best.build().unwrap();
    assert_eq!(best.steps(), 12);
    assert_ne!(best.times(), default.times());
    assert_eq!(best.fingerprint(), cosine.build().unwrap().fingerprint());
    assert_eq!(Preset::Best.apply(Schedule::builder(), 10, None).unwrap().1,
               SamplerParams { order: 1, lower_order_final: true, allow_table_mismatch: false,
                               method: Method::Data, corrector: true,
                               prediction: Prediction::Epsilon, weights: Vec::new() });
    // Its times are those of the C preset: the builder's custom taus no longer apply.
    let (custom, ..) = Preset::Best.apply(Schedule::builder().taus(vec![0.9, 0.5]), 12, None).unwrap();
    let linear = Preset::Best.apply(Schedule::builder(), 12, None).unwrap().0.build().unwrap();
    assert_eq!(custom.build().unwrap().times(), linear.times());
    // Bad NFE: the error names it.
    let err = Preset::Best.apply(Schedule::builder(), 0, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("nfe"), "{}", err.message());
}

#[test]
fn data_method_order_0_is_ddim_and_the_corrector_needs_it() {
    let schedule = Schedule::builder().spacing(Spacing::Trailing).steps(8).build().unwrap();
    let ddim = Sampler::new(&schedule, None, &SamplerParams { order: 0, ..Default::default() })
        .unwrap();
    let data = SamplerParams { order: 0, method: Method::Data, ..Default::default() };
    let data = Sampler::new(&schedule, None, &data).unwrap();
    for i in 0..8 {
        let (a, b) = (ddim.coeffs(i).unwrap(), data.coeffs(i).unwrap());
        // x_to = psi_eps x + c_eps eps = psi_x0 x + c_x0 (x - sigma eps) / alpha
        let alpha = schedule.alpha_bar(a.tau_from).sqrt();
        let sigma = (1.0 - alpha * alpha).sqrt();
        assert!((a.psi - (b.psi + b.c[0] / alpha)).abs() < 1e-12, "step {i}");
        assert!((a.c[0] + b.c[0] * sigma / alpha).abs() < 1e-12, "step {i}");
    }
    let corrected = SamplerParams { method: Method::Data, corrector: true, ..Default::default() };
    let c = Sampler::new(&schedule, None, &corrected).unwrap().coeffs(3).unwrap();
    assert_eq!((c.order, c.corrector_order), (3, 3));
    let eps = SamplerParams { corrector: true, ..Default::default() };
    let err = Sampler::new(&schedule, None, &eps).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("corrector"), "{}", err.message());
}
