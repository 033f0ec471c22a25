//! The all-reduce a data-parallel step pays, measured: under `mpirun -np N`, each rank
//! sums gradient-sized f32 buffers (packed into `GradBuckets` of the size the training
//! loop uses, so the same calls) across the ranks, several times per size, and rank 0
//! prints the best and median times, then the best time of the collective alone (the
//! buffers already packed: what the staging costs is the difference) and its bus
//! bandwidth (`2 (N-1)/N` of the bytes, NCCL's convention: what each rank sends and
//! receives in a ring all-reduce).
//! `benches/mpi_allreduce.c` is the peer: MPI's own blocking `MPI_Allreduce` on the same
//! sizes. docs/SCALING.md uses both for the all-reduce term of its step-time model.
//!
//! ```sh
//! cargo build --release -p lamina-train --features mpi --example allreduce
//! mpirun -np 2 --oversubscribe --bind-to none target/release/examples/allreduce [MiB ...]
//! ```

use lamina_train::dist::{world, GradBuckets, DEFAULT_BUCKET_ELEMS};
use std::time::{Duration, Instant};

fn main() {
    let group = world(Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));
    let sizes: Vec<f64> = std::env::args().skip(1).map(|a| a.parse().expect("sizes in MiB")).collect();
    let sizes = if sizes.is_empty() { vec![1.0, 9.3, 64.0, 256.0] } else { sizes };
    let (rank, n) = (group.rank(), group.size());
    if rank == 0 {
        println!("all-reduce of f32 buffers across {n} processes, buckets of {} MiB", (DEFAULT_BUCKET_ELEMS * 4) >> 20);
        println!(
            "| MiB | calls | packed and unpacked: best ms | median ms | the collective alone: best ms | its bus GB/s |"
        );
        println!("|---:|---:|---:|---:|---:|---:|");
    }
    for mib in sizes {
        let elems = (mib * (1 << 20) as f64 / 4.0) as usize;
        let plan = GradBuckets::new(vec![elems], DEFAULT_BUCKET_ELEMS).unwrap();
        let mut grad = vec![rank as f32; elems];
        let reps = if mib > 100.0 { 3 } else { 5 };
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            group.barrier().unwrap();
            let t = Instant::now();
            plan.sum(&*group, &mut [&mut grad]).unwrap();
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let (best, median) = (times[0], times[reps / 2]);
        // The collective alone, on buffers already packed (no copies around it).
        let mut raw = vec![vec![rank as f32; elems.min(DEFAULT_BUCKET_ELEMS)]; plan.count()];
        let mut raw_times = Vec::with_capacity(reps);
        for _ in 0..reps {
            group.barrier().unwrap();
            let t = Instant::now();
            group.all_reduce_sum(&mut raw).unwrap();
            raw_times.push(t.elapsed().as_secs_f64());
        }
        raw_times.sort_by(f64::total_cmp);
        let bus = 2.0 * (n - 1) as f64 / n as f64 * (elems * 4) as f64 / raw_times[0] / 1e9;
        if rank == 0 {
            println!(
                "| {mib} | {} | {:.2} | {:.2} | {:.2} | {bus:.2} |",
                plan.count(),
                best * 1e3,
                median * 1e3,
                raw_times[0] * 1e3
            );
        }
    }
    group.finish().unwrap();
}
