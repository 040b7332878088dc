//! What ABI 1 changed: names from the library, prediction a sampler parameter, sample stats,
//! table params, backends.
mod common;

use std::sync::Arc;

use common::{gaussian_eps, repo};
use deissn::{DType, ErrorKind, Method, Model, ModelParams, Noise, NormTable, Prediction, Preset,
             Sampler, SamplerParams, Schedule, Spacing, TimeConvention};

#[test]
fn enums_parse_the_librarys_names_and_aliases() {
    assert_eq!("cosine".parse::<Noise>().unwrap(), Noise::SquaredCosCapV2);
    assert_eq!("squaredcos_cap_v2".parse::<Noise>().unwrap(), Noise::SquaredCosCapV2);
    assert_eq!("VP".parse::<Noise>().unwrap(), Noise::ContinuousVp);
    assert_eq!("uniform".parse::<Spacing>().unwrap(), Spacing::Power);
    assert_eq!("log-snr".parse::<Spacing>().unwrap(), Spacing::LogSnr);
    assert_eq!("x0".parse::<Method>().unwrap(), Method::Data);
    for (name, want) in [("epsilon", Prediction::Epsilon), ("eps", Prediction::Epsilon),
                         ("sample", Prediction::Sample), ("x0", Prediction::Sample),
                         ("v_prediction", Prediction::V), ("v", Prediction::V)] {
        assert_eq!(name.parse::<Prediction>().unwrap(), want, "{name}");
    }
    assert_eq!("tau1000".parse::<TimeConvention>().unwrap(), TimeConvention::Tau1000);
    assert_eq!("bf16".parse::<DType>().unwrap(), DType::BFloat16);
    assert_eq!("reference".parse::<Preset>().unwrap(), Preset::Reference);
    // Display is the canonical name, and reads back
    assert_eq!(Prediction::V.to_string(), "v_prediction");
    assert_eq!(Noise::SquaredCosCapV2.name(), "squaredcos_cap_v2");
    for p in [Prediction::Epsilon, Prediction::Sample, Prediction::V] {
        assert_eq!(p.name().parse::<Prediction>().unwrap(), p);
    }
}

#[test]
fn unknown_names_get_the_librarys_message() {
    let e = "cosinus".parse::<Noise>().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(e.message(), "unknown noise schedule 'cosinus' (known: linear, scaled_linear, \
                             squaredcos_cap_v2, custom_betas, custom_alphas_cumprod, continuous_vp)");
    let e = "noise".parse::<Prediction>().unwrap_err();
    assert!(e.message().contains("(known: epsilon, sample, v_prediction)"), "{e}");
    // a name the library knows but the Rust enum has no variant for says where it goes
    let e = "custom_betas".parse::<Noise>().unwrap_err();
    assert!(e.message().contains("ScheduleBuilder::betas"), "{e}");
    let e = SamplerParams::named("dpm").unwrap_err();
    assert!(e.message().contains("unknown sampler 'dpm' (known: deis-sn"), "{e}");
}

#[test]
fn samplers_by_name() {
    let (p, uses_table) = SamplerParams::named("deis-sn").unwrap();
    assert_eq!((p, uses_table), (SamplerParams::default(), true));
    let (p, uses_table) = SamplerParams::named("ddim").unwrap();
    assert_eq!((p.order, p.method, uses_table), (0, Method::Eps, false));
    let (p, _) = SamplerParams::named("x0-corrector").unwrap();
    assert_eq!((p.method, p.corrector), (Method::Data, true));
}

/// The sampler reads the model's output as its params say, in sample() and step() alike.
#[test]
fn prediction_is_a_sampler_parameter() {
    let schedule = Arc::new(Schedule::builder().steps(8).build().unwrap());
    let (shape, numel) = ([2usize, 16], 32);
    let mut noise = vec![0.0f32; numel];
    deissn::fill_noise(7, 0, 16, &mut noise).unwrap();
    let run = |prediction: Prediction| {
        let s = Arc::clone(&schedule);
        let model = Model::from_fn(TimeConvention::Tau, move |x, _, tau, out| {
            gaussian_eps(&s, tau, 0.5, x, out);
            let (abar, n) = (s.alpha_bar(tau), x.len());
            let (a, sg) = (abar.sqrt() as f32, (1.0 - abar).sqrt() as f32);
            for i in 0..n {
                let (xi, e) = (x[i], out[i]);
                out[i] = match prediction {
                    Prediction::Epsilon => e,
                    Prediction::Sample => (xi - sg * e) / a,
                    Prediction::V => a * e - sg * (xi - sg * e) / a,
                };
            }
            Ok(())
        })
        .unwrap();
        let params = SamplerParams { prediction, ..Default::default() };
        let mut sampler = Sampler::new(&schedule, None, &params).unwrap();
        let mut x = noise.clone();
        let stats = sampler.sample(&model, &mut x, &shape).unwrap();
        assert_eq!(stats.evaluations, 8);
        assert!(stats.model_seconds > 0.0 && stats.sampler_seconds > 0.0, "{stats:?}");
        x
    };
    let want = run(Prediction::Epsilon);
    for p in [Prediction::Sample, Prediction::V] {
        let got = run(p);
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err < 1e-4, "{p}: {err}");
    }
    // and not as eps: an x0 model read as eps gives other samples
    let mut wrong = Sampler::new(&schedule, None, &SamplerParams::default()).unwrap();
    let mut v = SamplerParams { prediction: Prediction::V, ..Default::default() };
    v.order = 3;
    let mut right = Sampler::new(&schedule, None, &v).unwrap();
    let (mut a, mut b) = (noise.clone(), noise.clone());
    let out = vec![0.25f32; numel];
    while wrong.next_step().is_some() {
        wrong.step(&mut a, &out).unwrap();
        right.step(&mut b, &out).unwrap();
    }
    assert_ne!(a, b);
}

#[test]
fn table_clip_and_metadata_go_through_the_params() {
    let dir = std::env::temp_dir().join(format!("deissn-abi1-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.dtab");
    let t = NormTable::from_knots(&[0.0, 0.5, 1.0], &[9.0, 2.0, 3.0]).unwrap();
    assert_eq!(t.clip(), 0);
    let labelled = t.with_metadata("made here").unwrap();
    assert_eq!((labelled.metadata(), labelled.knots()), ("made here".to_string(), t.knots()));
    assert_eq!(labelled.with_metadata("").unwrap().metadata(), "");
    labelled.save(&path).unwrap();
    let back = NormTable::load(&path, 0).unwrap();
    assert_eq!((back.metadata(), back.knots()), (labelled.metadata(), labelled.knots()));
    // load's clip is applied on top of the file's
    let clipped = NormTable::load(&path, 1).unwrap();
    assert_eq!((clipped.clip(), clipped.knots()[0].1), (1, 2.0));
    assert_eq!(clipped.metadata(), "made here"); // None: the file's
    let e = NormTable::load(&path, 3).unwrap_err();
    assert!(e.kind() == ErrorKind::InvalidArgument && e.message().contains("clip"), "{e}");
    let reference = NormTable::from_reference(&[1.0, 1.0, 1.0], &[5.0, 1.0, 2.0], 1).unwrap();
    assert_eq!(reference.knots().iter().map(|k| k.1).collect::<Vec<_>>(), [1.0, 1.0, 5.0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn model_backends_are_named() {
    let params = ModelParams { backend: Some("onnx".into()), ..Default::default() };
    let e = Model::load(repo().join("tests/models/gaussian_eps.pt"), &params).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidArgument | ErrorKind::Unsupported), "{e}");
    assert!(e.message().contains("onnx"), "{e}");
    if deissn::has_torch() {
        let torch = ModelParams { backend: Some("torch".into()), ..Default::default() };
        Model::load(repo().join("tests/models/gaussian_eps.pt"), &torch).unwrap();
    } else {
        println!("SKIP model_backends_are_named (torch part): the torch plug-in is not available");
    }
}
