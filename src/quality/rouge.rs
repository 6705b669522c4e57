//! ROUGE-L F-measure as pycocoevalcap 1.2's `Rouge`: longest common
//! subsequence against each reference, precision and recall each maximised
//! over the references, beta = 1.2; corpus score = mean of item scores.

/// beta of the F-measure (recall weighted 1.2 times precision).
const BETA: f64 = 1.2;

/// Tokens as the reference splits them: on single spaces, so an empty caption
/// is one empty token (which matches nothing).
fn split(text: &str) -> Vec<&str> {
    text.split(' ').collect()
}

/// Length of the longest common subsequence, O(|a| |b|) time, O(min) memory.
pub fn lcs(a: &[&str], b: &[&str]) -> usize {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    let mut prev = vec![0usize; short.len() + 1];
    let mut cur = vec![0usize; short.len() + 1];
    for x in long {
        for (j, y) in short.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[short.len()]
}

/// ROUGE-L of one tokenized candidate against its tokenized references.
pub fn rouge_l(candidate: &str, references: &[&str]) -> f64 {
    let c = split(candidate);
    let mut prec_max = f64::NEG_INFINITY;
    let mut rec_max = f64::NEG_INFINITY;
    for r in references {
        let r = split(r);
        let l = lcs(&r, &c) as f64;
        prec_max = prec_max.max(l / c.len() as f64);
        rec_max = rec_max.max(l / r.len() as f64);
    }
    if prec_max != 0.0 && rec_max != 0.0 && prec_max.is_finite() {
        let b2 = BETA.powi(2);
        ((1.0 + b2) * prec_max * rec_max) / (rec_max + b2 * prec_max)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcs_table() {
        let cases: [(&str, &str, usize); 4] = [
            ("a b c d", "a c d", 3),
            ("a b", "c d", 0),
            ("a a a", "a", 1),
            ("x y z", "z y x", 1),
        ];
        for (a, b, want) in cases {
            assert_eq!(lcs(&split(a), &split(b)), want, "{a} / {b}");
        }
    }
}
