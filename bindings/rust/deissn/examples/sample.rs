//! Sample a 4x4 grid of images with the shipped demo model and write it as a PGM (portable
//! graymap: no image crate is needed, and any viewer or `convert` reads it).
//!
//!     cargo run --example sample -- [MODEL.pt [TABLE|none [OUT.pgm [SIDE]]]]
//!
//! Defaults: models/fmnist_unet.pt, models/fmnist_unet.dsn (in the repository),
//! fmnist_samples.pgm, 32 (the demo model makes Fashion-MNIST images padded to 1 x 32 x 32,
//! values in [-1, 1]).
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use deissn::{Model, ModelParams, NormTable, Sampler, SamplerParams, Schedule};

const GRID: usize = 4;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sample: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).map_or_else(|| repo.join(default), PathBuf::from);
    let model_path = arg(0, "models/fmnist_unet.pt");
    let table_path = arg(1, "models/fmnist_unet.dsn");
    let out_path = args.get(2).map_or_else(|| PathBuf::from("fmnist_samples.pgm"), PathBuf::from);
    let side: usize = args.get(3).map_or(Ok(32), |s| s.parse())?;

    if !model_path.exists() {
        return Err(format!("{} is absent: the demo model is not in this checkout yet (it is \
                            trained separately); pass another TorchScript model as the first \
                            argument", model_path.display()).into());
    }
    let table = if table_path.as_os_str() == "none" {
        None
    } else if table_path.exists() {
        Some(NormTable::load(&table_path, 0)?)
    } else {
        return Err(format!("{} is absent: pass a table, or `none` for plain DEIS",
                           table_path.display()).into());
    };

    let schedule = Schedule::builder().steps(10).build()?;
    let mut sampler = Sampler::new(&schedule, table.as_ref(), &SamplerParams::default())?;
    let model = Model::load(&model_path, &ModelParams::default())?;
    let shape = [GRID * GRID, 1, side, side];
    let mut x = vec![0.0f32; shape.iter().product()];
    deissn::fill_noise(0, 0, side * side, &mut x)?;
    let stats = sampler.sample(&model, &mut x, &shape)?;
    println!("{} samples, {} model evaluations{}: {:.3} s in the model, {:.4} s in the sampler",
             GRID * GRID, stats.evaluations, if table.is_some() { " (DEIS-SN)" } else { "" },
             stats.model_seconds, stats.sampler_seconds);

    // Tile the samples into a GRID x GRID image, mapping [-1, 1] to 0..255.
    let w = GRID * side;
    let mut pgm = format!("P5\n{w} {w}\n255\n").into_bytes();
    for row in 0..w {
        for col in 0..w {
            let k = (row / side) * GRID + col / side;
            let v = x[k * side * side + (row % side) * side + col % side];
            pgm.push(((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8);
        }
    }
    std::fs::write(&out_path, pgm)?;
    println!("wrote {}", out_path.display());
    Ok(())
}
