//! The MPI group (`lamina_train::dist::MpiWorld`) under `mpirun -np 2`. Started by `cargo
//! test`, this program is the launcher: it runs itself under mpirun once per scenario and
//! checks what the job printed and how it ended. Started by mpirun, it is one rank of the
//! scenario named by its first argument.
//!
//! Scenarios: the collectives give the right sums, copies and ranks; gradients of a batch
//! split between the ranks sum to the whole batch's (`GradSync`); a rank that hangs
//! makes the other fail with the timeout error within seconds (and the job end); a rank
//! that is killed ends the job with mpirun's report naming it, within seconds.

use lamina_tensor::skip_or_fail;
use lamina_tensor::Tensor;
use lamina_train::dist::{launched_size, shard_rows, Collective, GradBuckets, GradSync, MpiWorld};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What rank 0 waits for in a collective before it gives up: short in the hang scenario,
/// long in the others (the kill must be caught by mpirun, not by this timeout).
fn timeout(scenario: &str) -> Duration {
    Duration::from_secs(if scenario == "hang" { 2 } else { 60 })
}

fn main() {
    if launched_size().is_some() {
        let scenario = std::env::args().nth(1).unwrap_or_default();
        let group = MpiWorld::init(timeout(&scenario)).unwrap_or_else(|e| panic!("{e}"));
        match scenario.as_str() {
            "collectives" => collectives(Box::new(group)),
            "grads" => grads(Box::new(group)),
            "hang" => hang(Box::new(group)),
            "killed" => killed(Box::new(group)),
            other => panic!("unknown scenario {other:?}"),
        }
        return;
    }
    if Command::new("mpirun").arg("--version").output().is_err() {
        skip_or_fail("LAMINA_REQUIRE_MPI", "`mpirun` was not found (apt-get install openmpi-bin)");
        return;
    }
    launch_collectives();
    launch_grads();
    launch_hang();
    launch_killed();
    println!("dist_mpi: 4 scenarios passed");
}

/// Rank r's value at index i: small integers, so the sum over ranks is exact in f32.
fn value(rank: usize, i: usize) -> f32 {
    ((i % 1000) * 10 + rank + 1) as f32
}

fn collectives(group: Box<dyn Collective>) {
    let (rank, size) = (group.rank(), group.size());
    assert_eq!(size, 2);
    // Two buffers in flight at once, one of them empty.
    let mut bufs = vec![(0..5000).map(|i| value(rank, i)).collect::<Vec<_>>(), Vec::new()];
    group.all_reduce_sum(&mut bufs).unwrap();
    for (i, &x) in bufs[0].iter().enumerate() {
        assert_eq!(x, value(0, i) + value(1, i), "element {i}");
    }
    assert!(bufs[1].is_empty());

    // Gradient-shaped parts straddling three buckets of 1000 elements.
    let lens = [700usize, 1, 1300, 0, 500];
    let plan = GradBuckets::new(lens.to_vec(), 1000).unwrap();
    assert_eq!(plan.count(), 3);
    let mut parts: Vec<Vec<f32>> =
        lens.iter().enumerate().map(|(p, &n)| (0..n).map(|i| value(rank, p * 7 + i)).collect()).collect();
    let mut refs: Vec<&mut [f32]> = parts.iter_mut().map(Vec::as_mut_slice).collect();
    plan.sum(&*group, &mut refs).unwrap();
    for (p, part) in parts.iter().enumerate() {
        for (i, &x) in part.iter().enumerate() {
            assert_eq!(x, value(0, p * 7 + i) + value(1, p * 7 + i), "part {p} element {i}");
        }
    }

    let mut bytes = if rank == 1 { *b"from rank one" } else { [0u8; 13] };
    group.broadcast(&mut bytes, 1).unwrap();
    assert_eq!(&bytes, b"from rank one");
    assert!(group.broadcast(&mut bytes, 2).is_err());
    group.barrier().unwrap();
    println!("rank {rank}: collectives ok");
    group.finish().unwrap();
}

/// Two ranks each take their rows of one batch (`shard_rows`), run backward, and
/// `GradSync` sums the leaves' gradients and a scalar: the result is the whole batch's
/// gradient on both ranks, also for a leaf that backward reached on one rank only; a leaf
/// reached on neither keeps none.
fn grads(group: Box<dyn Collective>) {
    let rank = group.rank();
    // The batch: 5 rows of x (3 wide); the loss is sum over rows of w . x_row (+ b on rank 0).
    let x: Vec<f32> = (0..15).map(|i| i as f32 * 0.5 - 2.0).collect();
    let rows = shard_rows(5, rank, group.size());
    let w = Tensor::from_vec(vec![0.1f32, -0.2, 0.3], &[3, 1]).unwrap().requires_grad_();
    let b = Tensor::from_vec(vec![1f32], &[1]).unwrap().requires_grad_();
    // A leaf no rank's backward reaches (a frozen branch): it keeps no gradient, as in one
    // process, so the optimizer leaves it and its moments alone.
    let unused = Tensor::from_vec(vec![2f32; 4], &[4]).unwrap().requires_grad_();
    let mine = Tensor::from_vec(x[rows.start * 3..rows.end * 3].to_vec(), &[rows.len(), 3]).unwrap();
    let mut loss = mine.matmul(&w).unwrap().sum_all().unwrap();
    if rank == 0 {
        loss = loss.add(&b.sum_all().unwrap()).unwrap();
    }
    loss.backward().unwrap();
    let sync = GradSync::new(&*group, vec![w.clone(), b.clone(), unused.clone()], 1).unwrap();
    assert_eq!(sync.calls(), 1, "one bucket for 9 elements and 4 numbers");
    let mut scalars = [rank as f32 + 1.0];
    sync.sum(&mut scalars).unwrap();
    assert_eq!(scalars, [3.0]);
    // d/dw of sum_rows x_row . w: the column sums of the whole batch.
    let want: Vec<f32> = (0..3).map(|c| (0..5).map(|r| x[r * 3 + c]).sum()).collect();
    assert_eq!(w.grad().unwrap().to_vec_f32().unwrap(), want);
    assert_eq!(b.grad().unwrap().to_vec_f32().unwrap(), [1.0]);
    assert!(unused.grad().is_none(), "rank {rank}: a leaf no rank reached has a gradient");
    println!("rank {rank}: gradients ok");
    group.finish().unwrap();
}

/// Rank 1 stops answering (a deadlock, a stopped process); rank 0's all-reduce must time out.
fn hang(group: Box<dyn Collective>) {
    if group.rank() == 1 {
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let started = Instant::now();
    let err = group.all_reduce_sum(&mut [vec![1.0; 10]]).unwrap_err();
    eprintln!("rank 0 error after {:.1} s: {err}", started.elapsed().as_secs_f64());
    // A broken group refuses further calls rather than touch MPI again.
    let again = group.barrier().unwrap_err();
    eprintln!("rank 0 then: {again}");
    drop(group); // aborts the job: rank 1 is still asleep
    unreachable!("MPI_Abort returned");
}

/// Rank 1 is killed (the kernel's OOM killer, a lost node) while rank 0 waits on it.
fn killed(group: Box<dyn Collective>) {
    if group.rank() == 1 {
        let pid = std::process::id().to_string();
        let _ = Command::new("kill").args(["-9", &pid]).status();
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let res = group.all_reduce_sum(&mut [vec![1.0; 10]]);
    eprintln!("rank 0: all-reduce returned {res:?}");
    drop(group);
}

struct JobResult {
    ok: bool,
    output: String,
    seconds: f64,
}

/// Runs this program under `mpirun -np 2` with `scenario`, killing it after 60 s.
fn mpirun(scenario: &str) -> JobResult {
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut child = Command::new("mpirun")
        .args(["-np", "2", "--oversubscribe", "--bind-to", "none"])
        .arg(&exe)
        .arg(scenario)
        // Open MPI refuses to run as root (CI containers) without both of these.
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out_pipe = child.stdout.take().unwrap();
    let err_pipe = child.stderr.take().unwrap();
    let read = |mut p: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = p.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (read(Box::new(out_pipe)), read(Box::new(err_pipe)));
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mpirun {scenario}: still running after 60 s:\n{}", err.join().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("mpirun -np 2 {scenario}: {status} after {seconds:.1} s");
    JobResult { ok: status.success(), output, seconds }
}

fn launch_collectives() {
    let r = mpirun("collectives");
    assert!(r.ok, "{}", r.output);
    for rank in 0..2 {
        assert!(r.output.contains(&format!("rank {rank}: collectives ok")), "{}", r.output);
    }
}

fn launch_grads() {
    let r = mpirun("grads");
    assert!(r.ok, "{}", r.output);
    for rank in 0..2 {
        assert!(r.output.contains(&format!("rank {rank}: gradients ok")), "{}", r.output);
    }
}

fn launch_hang() {
    let r = mpirun("hang");
    assert!(!r.ok, "a hung rank must fail the job:\n{}", r.output);
    for needed in [
        "rank 0 of 2: all-reduce did not complete within 2.0 s: another rank has died, hangs or is far slower",
        "the MPI group is unusable after an earlier failure",
        "lamina: rank 0 of 2 is aborting the MPI job",
    ] {
        assert!(r.output.contains(needed), "missing {needed:?} in:\n{}", r.output);
    }
    assert!(r.seconds < 20.0, "the hang took {:.1} s to surface", r.seconds);
}

fn launch_killed() {
    let r = mpirun("killed");
    assert!(!r.ok, "a killed rank must fail the job:\n{}", r.output);
    assert!(
        r.output.contains("rank 1") && r.output.contains("signal 9"),
        "mpirun should name the killed rank and its signal:\n{}",
        r.output
    );
    assert!(r.seconds < 20.0, "the kill took {:.1} s to surface", r.seconds);
}
