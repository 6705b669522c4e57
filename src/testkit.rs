//! Deterministic pseudo-random numbers for tests, benchmarks and the benchmark
//! data generator (xorshift64; Box-Muller for normals). Not for anything that
//! needs statistical quality beyond that.

/// xorshift64 generator.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        // A zero state would stay zero; mix the seed and force a set bit.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Rows (x1, x2, x3): x1 and x2 standard normal with correlation `rho`, x3
/// independent noise. Both marginals are N(0, 1) whatever `rho`: the test
/// data of a covariate shift no per-column test can see.
pub fn correlated_rows(rng: &mut XorShift, n: usize, rho: f64) -> Vec<Vec<f64>> {
    (0..n)
        .map(|_| {
            let (a, b) = (rng.normal(), rng.normal());
            vec![a, rho * a + (1.0 - rho * rho).sqrt() * b, rng.normal()]
        })
        .collect()
}

/// The events `spec` generates, one per element (without line ends).
pub fn lines(spec: &crate::source::generate::GenerateSpec) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    crate::source::generate::generate(spec, &mut out).expect("writing to a Vec cannot fail");
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}
