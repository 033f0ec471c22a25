//! The machine's peak for `lamina bench`: the FMA peak derived from the clock, the SIMD
//! width and the thread count (stated, with its assumptions), and the memory bandwidth
//! measured by a STREAM-like copy and triad.

use lamina_tensor::cpu::isa;
use std::hint::black_box;
use std::time::Instant;

pub(super) struct Peak {
    /// `/proc/cpuinfo`'s model name.
    pub(super) model: Option<String>,
    /// 1-minute load average before we started.
    load: Option<f64>,
    threads: usize,
    clock_mhz: Option<f64>,
    clock_source: String,
    simd: &'static str,
    lanes: usize,
    pipes: usize,
    flop_per_lane_op: usize,
    pub(super) gflops: Option<f64>,
    copy_gbs: f64,
    triad_gbs: f64,
    pub(super) mem_gbs: f64,
}

impl Peak {
    pub(super) fn detect() -> Peak {
        let load = load_average();
        let threads = lamina_tensor::threads();
        let (clock_mhz, clock_source) = match clock_mhz() {
            Some((mhz, src)) => (Some(mhz), src),
            None => (None, "not found in /proc/cpuinfo or cpufreq".to_string()),
        };
        let (simd, lanes, pipes, flop_per_lane_op) = simd_width();
        let gflops = clock_mhz.map(|m| m / 1e3 * (pipes * lanes * flop_per_lane_op * threads) as f64);
        let (copy_gbs, triad_gbs) = stream(threads);
        Peak {
            model: cpu_model(),
            load,
            threads,
            clock_mhz,
            clock_source,
            simd,
            lanes,
            pipes,
            flop_per_lane_op,
            gflops,
            copy_gbs,
            triad_gbs,
            mem_gbs: copy_gbs.max(triad_gbs),
        }
    }

    pub(super) fn print(&self) {
        let model = self.model.as_deref().unwrap_or("CPU model unknown");
        println!("lamina bench: cpu {model}, f32, {} threads, engine kernels: {}", self.threads, isa::active().name());
        if let Some(load) = self.load {
            let busy = if load > 0.5 { ": other processes compete for the cores, rates may read low" } else { "" };
            println!("  1-minute load average before the run: {load:.2}{busy}");
        }
        let clock = self.clock_mhz.map_or("? MHz".to_string(), |m| format!("{m:.0} MHz"));
        let peak = self.gflops.map_or("unknown".to_string(), |g| format!("{g:.1} GFLOP/s"));
        println!(
            "compute peak: {clock} x {} FMA pipes x {} f32 lanes ({}) x {} flop x {} threads = {peak}",
            self.pipes, self.lanes, self.simd, self.flop_per_lane_op, self.threads
        );
        println!("  clock from {}; pipes assumed (2 on Zen / Intel big cores)", self.clock_source);
        println!(
            "memory peak: {:.1} GB/s, measured (STREAM-like, {} threads, 3 x 64 MiB arrays, best of 5): copy {:.1} GB/s, triad {:.1} GB/s",
            self.mem_gbs, self.threads, self.copy_gbs, self.triad_gbs
        );
        println!(
            "  memory-bound ops count bytes read + written once (f32); %peak is against the better of copy and triad"
        );
    }

    /// The CPU's roofline: the compute ceiling as derived (stated, not measured), the
    /// bandwidth as measured.
    pub(super) fn ceilings(&self) -> super::Ceilings {
        let compute_source = match self.clock_mhz {
            Some(mhz) => format!(
                "stated: {mhz:.0} MHz x {} FMA pipes x {} f32 lanes x {} flop x {} threads",
                self.pipes, self.lanes, self.flop_per_lane_op, self.threads
            ),
            None => "unknown: no clock in /proc/cpuinfo or cpufreq".into(),
        };
        let bandwidth_source =
            format!("measured: STREAM-like, the better of copy and triad, {} threads, 3 x 64 MiB", self.threads);
        super::Ceilings { gflops: self.gflops, compute_source, gbs: Some(self.mem_gbs), bandwidth_source }
    }

    pub(super) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "cpu_model": self.model, "threads": self.threads, "engine_isa": isa::active().name(), "load_average_1m": self.load,
            "clock_mhz": self.clock_mhz, "clock_source": self.clock_source,
            "simd": self.simd, "f32_lanes": self.lanes, "fma_pipes_assumed": self.pipes,
            "flop_per_lane_op": self.flop_per_lane_op, "gflops": self.gflops,
            "mem_copy_gbs_measured": self.copy_gbs, "mem_triad_gbs_measured": self.triad_gbs, "mem_gbs": self.mem_gbs,
        })
    }
}

/// The CPU's model name (Linux), for every figure that quotes a rate.
pub(crate) fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

/// The 1-minute load average (Linux), to flag runs that shared the cores with other work.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// The core clock: the largest "cpu MHz" in /proc/cpuinfo, else cpufreq's maximum.
fn clock_mhz() -> Option<(f64, String)> {
    if let Some(mhz) = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| max_cpu_mhz(&s)) {
        return Some((mhz, "/proc/cpuinfo \"cpu MHz\" (max over cores)".to_string()));
    }
    let path = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq";
    let khz: f64 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    Some((khz / 1e3, path.to_string()))
}

/// AMD family 25 (0x19) with AVX-512: Zen 4 (Zen 3, the same family, has no AVX-512).
fn is_zen4(cpuinfo: &str) -> bool {
    let field =
        |name: &str| cpuinfo.lines().find(|l| l.starts_with(name)).and_then(|l| l.split(':').nth(1)).map(str::trim);
    field("vendor_id") == Some("AuthenticAMD") && field("cpu family") == Some("25")
}

fn max_cpu_mhz(cpuinfo: &str) -> Option<f64> {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
        .reduce(f64::max)
}

/// (name, f32 lanes, pipes, flop per lane per op) of the widest vector unit this CPU has.
/// Without FMA the two pipes are one adder and one multiplier: 1 flop per lane each.
fn simd_width() -> (&'static str, usize, usize, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // Zen 4 (AMD family 25) splits each 512-bit FMA over its two 256-bit pipes: the
            // same peak as AVX2. Zen 5 and Intel's server cores issue two 512-bit FMAs.
            let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
            if is_zen4(&cpuinfo) {
                return ("avx-512, 256-bit halves (Zen 4)", 16, 1, 2);
            }
            return ("avx-512", 16, 2, 2);
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return ("avx2+fma", 8, 2, 2);
        }
        if is_x86_feature_detected!("avx") {
            return ("avx, no fma", 8, 2, 1);
        }
        ("sse", 4, 2, 1)
    }
    #[cfg(target_arch = "aarch64")]
    {
        ("neon", 4, 2, 2)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        ("scalar", 1, 2, 2)
    }
}

/// STREAM-like bandwidth in GB/s: (copy `c = a`, triad `a = b + s * c`), best of 5 passes,
/// counting bytes read + written like STREAM does. 3 x 64 MiB dwarfs the caches.
fn stream(threads: usize) -> (f64, f64) {
    const N: usize = 1 << 24;
    let (mut a, b, mut c) = (vec![1.0f32; N], vec![2.0f32; N], vec![0.5f32; N]);
    let chunk = N.div_ceil(threads.max(1));
    let best = |bytes: f64, pass: &mut dyn FnMut()| {
        (0..6)
            .map(|i| {
                let t = Instant::now();
                pass();
                if i == 0 {
                    0.0
                } else {
                    bytes / t.elapsed().as_secs_f64() / 1e9
                } // pass 0 warms up
            })
            .fold(0.0, f64::max)
    };
    let copy = best(2.0 * 4.0 * N as f64, &mut || {
        std::thread::scope(|sc| {
            for (cc, ac) in c.chunks_mut(chunk).zip(a.chunks(chunk)) {
                sc.spawn(move || cc.copy_from_slice(ac));
            }
        })
    });
    let triad = best(3.0 * 4.0 * N as f64, &mut || {
        std::thread::scope(|sc| {
            for ((ac, bc), cc) in a.chunks_mut(chunk).zip(b.chunks(chunk)).zip(c.chunks(chunk)) {
                sc.spawn(move || ac.iter_mut().zip(bc).zip(cc).for_each(|((x, &y), &z)| *x = y + 3.0 * z));
            }
        })
    });
    black_box((&a, &c));
    (copy, triad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_parses_from_cpuinfo() {
        let info = "processor\t: 0\ncpu MHz\t\t: 2445.404\nprocessor\t: 1\ncpu MHz\t\t: 1800.0\n";
        assert_eq!(max_cpu_mhz(info), Some(2445.404));
        assert_eq!(max_cpu_mhz("model name: x"), None);
        assert!(is_zen4("vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"));
        assert!(!is_zen4("vendor_id\t: GenuineIntel\ncpu family\t: 6\n"));
    }
}
