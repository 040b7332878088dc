//! Every case of tests/data/deis_sn_golden.json: coefficients against the exact values and
//! trajectories on the analytic Gaussian model, through the safe API.
mod common;

use common::{gaussian_eps, repo, seed_tables, Json};
use deissn::{NormTable, Sampler, SamplerParams, Schedule, Spacing};

#[test]
fn golden_cases() {
    let golden = Json::parse(&std::fs::read_to_string(repo().join("tests/data/deis_sn_golden.json")).unwrap());
    let (mut ran, mut skipped) = (0, Vec::new());
    for c in golden.get("cases").arr() {
        let (nfe, order) = (c.get("nfe").num() as u32, c.get("order").num() as u32);
        let spacing = match c.get("spacing").str().unwrap() {
            "quadratic" => Spacing::Quadratic,
            "trailing" => Spacing::Trailing,
            other => panic!("spacing {other}"),
        };
        let name = format!("{spacing:?} nfe {nfe} order {order} table {:?}", c.get("table"));
        let table = match c.get("table").str() {
            None => None,
            Some(t) => {
                let path = seed_tables().join(format!("{t}_Ls_score_abs.pt"));
                if !path.exists() {
                    skipped.push(format!("{name}: {} is absent (set DEISSN_SEED_TABLES)", path.display()));
                    continue;
                }
                Some(NormTable::load(&path, c.get("clip_normalizer_steps").num() as u32).unwrap())
            }
        };
        let schedule = Schedule::builder().spacing(spacing).steps(nfe).build().unwrap();
        let params = SamplerParams { order, ..Default::default() };
        let mut sampler = Sampler::new(&schedule, table.as_ref(), &params).unwrap();

        for (i, want) in c.get("steps").arr().iter().enumerate() {
            let got = sampler.coeffs(i as u32).unwrap();
            assert!((got.tau_from - want.get("t_from").num()).abs() <= 1e-7, "{name} step {i}");
            assert!((got.psi / want.get("exact_psi").num() - 1.0).abs() <= 1e-6, "{name} step {i}");
            let exact = want.get("exact_C").nums();
            assert_eq!(exact.len() as u32, got.order + 1, "{name} step {i}");
            let scale = exact.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (j, e) in exact.iter().enumerate() {
                let err = (got.c[j] - e).abs() / scale;
                assert!(err <= 1e-9, "{name} step {i}: C[{j}] = {}, exact {e} (rel {err:e})", got.c[j]);
            }
        }

        let std = c.get("analytic_gaussian_std").num();
        let mut x: Vec<f32> = c.get("x_init").nums().iter().map(|&v| v as f32).collect();
        let mut eps = vec![0.0f32; x.len()];
        for want in c.get("exact_trajectory").arr() {
            let t = sampler.next_step().expect("a step per trajectory entry");
            gaussian_eps(&schedule, t.tau, std, &x, &mut eps);
            sampler.step(&mut x, &eps).unwrap();
            let want = want.nums();
            let xmax = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (k, (&got, w)) in x.iter().zip(&want).enumerate() {
                let err = (got as f64 - w).abs() / xmax;
                assert!(err <= 1e-6, "{name} step {}: x[{k}] = {got}, exact {w} (rel {err:e})", t.step);
            }
        }
        assert!(sampler.next_step().is_none(), "{name}: not done after the last step");
        ran += 1;
    }
    for s in &skipped {
        println!("SKIP golden_cases: case {s}");
    }
    assert!(ran > 0);
    println!("{ran} golden cases passed, {} skipped", skipped.len());
}
