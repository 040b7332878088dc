#!/usr/bin/python3
"""Calibrate, or tune, a model's normalization table across processes with torch.distributed.

    /usr/bin/python3 -m torch.distributed.run --standalone --nproc_per_node=2 \\
        bindings/python/examples/calibrate_distributed.py --model models/fmnist_unet.pt \\
        --samples 1024 --out fmnist_table.dsn
    /usr/bin/python3 -m torch.distributed.run --standalone --nproc_per_node=2 \\
        bindings/python/examples/calibrate_distributed.py --model models/fmnist_unet.pt \\
        --tune --out fmnist_tuned.dsn        # r(tau) and plans for NFE 3-25

Calibration: each worker samples its share of the sample indices (the noise of sample k
depends only on (seed, k), so the split does not change the samples), accumulating
mean-|eps| sums in a deissn.Calibrator. The integer sums and counts are then added up with
one all_reduce(SUM) over the gloo backend (CPU), and rank 0 writes one table. Because the
sums are integers, the table is bit for bit the one a single process makes.

Tuning (--tune, what `deissn-calibrate --model M` does in one process): each worker solves
its share of the reference trajectories (whole batches: deissn.Reference.solve), rank 0
gathers the parts as bytes, merges them and runs the plan search (deissn.tune(reference=)).
The parts' sums are exact, so the plans and the table are bit for bit those of one process.

Run without torchrun, it is that single process.
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the in-tree package
import deissn  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="TorchScript model file")
    ap.add_argument("--prediction", default="epsilon",
                    help="what the model outputs: epsilon (eps), sample (x0), v_prediction (v)")
    ap.add_argument("--shape", default="1,32,32",
                    help="the shape of one sample (default 1,32,32, as deissn-calibrate's)")
    ap.add_argument("--samples", type=int, default=1024, help="samples in all (default 1024)")
    ap.add_argument("--batch", type=int, default=64, help="samples per model call")
    ap.add_argument("--steps", type=int, default=1000, help="steps of the calibration runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clip", type=int, default=0,
                    help="knots nearest tau = 0 to clip (default 0, as deissn-calibrate's)")
    ap.add_argument("--out", required=True, help="the table file rank 0 writes")
    tune = ap.add_argument_group("tuning (--tune; the defaults are deissn.tune()'s)")
    tune.add_argument("--tune", action="store_true",
                      help="tune plans (and calibrate from the same solves) instead")
    tune.add_argument("--nfe", default="3-25", help="the NFE range to tune, e.g. 4-12")
    tune.add_argument("--grid-steps", type=int, help="the reference solves' time grid (400)")
    tune.add_argument("--fit", type=int, help="fit trajectories (128)")
    tune.add_argument("--holdout", type=int, help="hold-out trajectories (256)")
    args = ap.parse_args()
    shape = tuple(int(d) for d in args.shape.split(","))

    distributed = "WORLD_SIZE" in os.environ  # set by torchrun
    if distributed:
        import torch.distributed as dist
        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1

    model = deissn.Model.load(args.model, threads=1 if distributed else 0)
    if args.tune:
        tune_distributed(args, shape, model, rank, world, distributed)
    else:
        calibrate_distributed(args, shape, model, rank, world, distributed)
    if distributed:
        dist.barrier()
        dist.destroy_process_group()


def tune_distributed(args, shape, model, rank, world, distributed):
    lo, _, hi = args.nfe.partition("-")
    run = dict(shape=shape, grid_steps=args.grid_steps, fit_samples=args.fit,
               holdout_samples=args.holdout, batch=args.batch, seed=args.seed,
               prediction=args.prediction)
    total = (args.fit or 128) + (args.holdout if args.holdout is not None else 256)
    batches = -(-total // args.batch)
    # this worker's whole batches (the header's advice: then each sample is evaluated in the
    # batch one process evaluates it in)
    first = batches * rank // world * args.batch
    last = min(total, batches * (rank + 1) // world * args.batch)
    part = deissn.Reference.solve(model, first=first, count=last - first, **run).to_bytes() \
        if last > first else None
    if distributed:
        import torch.distributed as dist
        parts = [None] * world if rank == 0 else None
        dist.gather_object(part, parts, dst=0)
    else:
        parts = [part]
    if rank == 0:
        ref = deissn.Reference.merge(deissn.Reference.from_bytes(p) for p in parts if p)
        table = deissn.tune(model, nfe=(int(lo), int(hi or lo)), reference=ref, **run)
        meta = "model=%s seed=%d tuned" % (Path(args.model).name, args.seed)
        table = table.copy(metadata=meta)
        table.save(args.out)
        print("%s: plans for NFE %s from %d reference trajectories in %d process(es)"
              % (args.out, args.nfe, total, world))
        for p in table.plans:
            print("  NFE %2d  held-out RMSE %.4g [%.4g, %.4g], BEST %.4g"
                  % (p.nfe, p.error, p.error_low, p.error_high, p.best_error))


def calibrate_distributed(args, shape, model, rank, world, distributed):
    schedule = deissn.Schedule(spacing="trailing", steps=args.steps)
    sampler = deissn.Sampler(schedule, prediction=args.prediction)
    calibrator = deissn.Calibrator(schedule)
    first, last = args.samples * rank // world, args.samples * (rank + 1) // world
    for start in range(first, last, args.batch):
        n = min(args.batch, last - start)
        x = deissn.noise(args.seed, n, shape, first_sample=start)
        sampler.sample(model, x, calibrator=calibrator)

    sums, counts, samples = calibrator.sums
    if distributed:
        import torch
        import torch.distributed as dist
        # torch has no uint64: counts and samples travel as int64 (they are far below 2^63).
        t_sums = torch.from_numpy(sums)
        t_counts = torch.from_numpy(counts.astype("int64"))
        t_samples = torch.tensor([samples], dtype=torch.int64)
        for t in (t_sums, t_counts, t_samples):
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        sums, counts, samples = t_sums.numpy(), t_counts.numpy(), int(t_samples[0])
    if rank == 0:
        total = deissn.Calibrator(schedule)
        total.add_sums(sums, counts, samples)
        meta = "model=%s seed=%d samples=%d steps=%d" % (
            Path(args.model).name, args.seed, args.samples, args.steps)
        table = total.finish(clip=args.clip, metadata=meta)
        table.save(args.out)
        print("%s: %d knots from %d samples in %d process(es); r(0) = %.4f, r(1) = %.4f"
              % (args.out, len(table), samples, world, table(0.0), table(1.0)))


if __name__ == "__main__":
    main()
