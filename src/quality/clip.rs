//! CLIPScore and RefCLIPScore (Hessel et al. 2021, "CLIPScore: A
//! Reference-free Evaluation Metric for Image Captioning") from embeddings the
//! serving stack already logs: image and caption embeddings from one dual
//! encoder, and optionally embeddings of reference captions.

/// CLIPScore's rescaling weight w.
pub const W: f64 = 2.5;

/// Cosine similarity; `None` when dimensions differ or a vector is zero.
pub fn cosine(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let (mut dot, mut na, mut nb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return None;
    }
    Some(dot / (na.sqrt() * nb.sqrt()))
}

/// CLIP-S = w * max(cos(image, caption), 0).
pub fn clip_score(image: &[f64], caption: &[f64]) -> Option<f64> {
    cosine(image, caption).map(|c| W * c.max(0.0))
}

/// RefCLIP-S = harmonic mean of CLIP-S and max(max_r cos(caption, r), 0).
pub fn ref_clip_score(image: &[f64], caption: &[f64], references: &[Vec<f64>]) -> Option<f64> {
    let clip = clip_score(image, caption)?;
    let best = references
        .iter()
        .filter_map(|r| cosine(caption, r))
        .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))))?;
    let r = best.max(0.0);
    Some(if clip + r == 0.0 {
        0.0
    } else {
        2.0 * clip * r / (clip + r)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 1.0]), Some(0.0));
        assert_eq!(cosine(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 2.0]), None);
        assert!((clip_score(&[1.0, 1.0], &[2.0, 2.0]).unwrap() - 2.5).abs() < 1e-15);
        assert_eq!(clip_score(&[1.0, 0.0], &[-1.0, 0.0]), Some(0.0));
        // CLIP-S 2.5 * 0.6 = 1.5, best reference cosine 1.0: H-mean = 2*1.5/(2.5) = 1.2
        let got =
            ref_clip_score(&[1.0, 0.0], &[0.6, 0.8], &[vec![0.6, 0.8], vec![0.0, 1.0]]).unwrap();
        assert!((got - 1.2).abs() < 1e-12, "{got}");
        assert_eq!(ref_clip_score(&[1.0, 0.0], &[0.6, 0.8], &[]), None);
    }
}
