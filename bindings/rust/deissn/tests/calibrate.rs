//! Calibrator and table files from Rust: exact merging across batches, the round trip through
//! a .dsn file, and the refusals.
mod common;

use std::sync::Arc;

use common::gaussian_eps;
use deissn::{Calibrator, ErrorKind, Method, Model, NormTable, Sampler,
             SamplerParams, Schedule, Spacing, TimeConvention};

fn gaussian_model(schedule: &Arc<Schedule>) -> Model {
    let s = Arc::clone(schedule);
    Model::from_fn(TimeConvention::Tau, move |x, _shape, tau, out| {
        gaussian_eps(&s, tau, 0.5, x, out);
        Ok(())
    })
    .unwrap()
}

/// Calibrate `n` samples (noise samples `first..first + n`) in one batch.
fn calibrate(schedule: &Arc<Schedule>, first: u64, n: usize) -> Calibrator {
    let params = SamplerParams { order: 0, ..Default::default() }; // DDIM, as deissn-calibrate
    let mut sampler = Sampler::new(schedule, None, &params).unwrap();
    let mut cal = Calibrator::new(schedule).unwrap();
    let mut x = vec![0.0f32; n * 16];
    deissn::fill_noise(7, first, 16, &mut x).unwrap();
    sampler.sample_calibrated(&gaussian_model(schedule), &mut x, &[n, 16], &mut cal).unwrap();
    cal
}

#[test]
fn batches_merge_bit_for_bit_and_tables_round_trip() {
    let schedule = Arc::new(Schedule::builder().spacing(Spacing::Trailing).steps(50).build().unwrap());
    let whole = calibrate(&schedule, 0, 8);
    let mut parts = calibrate(&schedule, 0, 3);
    parts.merge(&calibrate(&schedule, 3, 5)).unwrap();
    assert_eq!(whole.steps(), 50);
    assert_eq!(whole.sums(), parts.sums());
    assert_eq!(whole.sums().samples, 8);

    // the raw sums carry the same state (e.g. across processes)
    let mut raw = Calibrator::new(&schedule).unwrap();
    raw.add_sums(&whole.sums()).unwrap();
    assert_eq!(raw.sums(), whole.sums());

    // r of Gaussian data N(0, 0.25) at tau = 1 is E|eps| of nearly pure noise: about 0.8
    let table = whole.finish(0, Some("gaussian, 8 samples")).unwrap();
    assert_eq!(table.len(), 50);
    assert!((table.eval(1.0) - 0.8).abs() < 0.15, "r(1) = {}", table.eval(1.0));
    assert_eq!(table.metadata(), "gaussian, 8 samples");
    assert_eq!(table.fingerprint(), schedule.fingerprint());

    let dir = std::env::temp_dir().join(format!("deissn-rust-cal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.dsn");
    table.with_metadata("relabelled").unwrap().save(&path).unwrap();
    let back = NormTable::load(&path, 0).unwrap();
    assert_eq!(back.knots(), table.knots());
    assert_eq!(back.metadata(), "relabelled");
    assert_eq!(Calibrator::from_table(&back).unwrap().sums(), whole.sums());
    back.export_csv(dir.join("t.csv")).unwrap();
    assert!(std::fs::read_to_string(dir.join("t.csv")).unwrap().lines().count() > 50);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn calibration_refusals_name_the_problem() {
    let schedule = Arc::new(Schedule::builder().spacing(Spacing::Trailing).steps(10).build().unwrap());
    let mut cal = Calibrator::new(&schedule).unwrap();
    assert_eq!(cal.finish(0, None).unwrap_err().kind(), ErrorKind::State); // no values yet
    let err = cal.add(10, &[0.5; 4], 1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(cal.add(0, &[f32::NAN], 1).unwrap_err().kind(), ErrorKind::NonFinite);

    // another schedule's calibrator does not merge
    let other = Schedule::builder().spacing(Spacing::Trailing).steps(12).build().unwrap();
    assert_eq!(cal.merge(&Calibrator::new(&other).unwrap()).unwrap_err().kind(), ErrorKind::Mismatch);

    // METHOD_DATA keeps x0, not eps: it cannot calibrate
    let data = SamplerParams { method: Method::Data, ..Default::default() };
    let mut sampler = Sampler::new(&schedule, None, &data).unwrap();
    let mut x = vec![0.0f32; 16];
    deissn::fill_noise(1, 0, 16, &mut x).unwrap();
    let err = sampler.sample_calibrated(&gaussian_model(&schedule), &mut x, &[1, 16], &mut cal)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("calibrator"), "{}", err.message());

    // a table from knots has no sums to merge
    let knots = NormTable::from_knots(&[0.0, 1.0], &[0.5, 0.8]).unwrap();
    assert_eq!(Calibrator::from_table(&knots).unwrap_err().kind(), ErrorKind::InvalidArgument);
}
