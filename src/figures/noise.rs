//! The noise of everything published finer than a district: OpenDP's exact sampler of the
//! discrete Laplace distribution (Canonne, Kamath and Steinke 2020), with OpenSSL's
//! generator behind its random bits.
//!
//! Textbook Laplace noise in floating point leaks through the low bits of its result (Mironov
//! 2012); integer counts with integer noise drawn exactly have no such bits. The scale is the
//! rational number nearest above the one asked for, so the privacy loss is never more than
//! stated: a count whose one household can move it by `Δ` (its sensitivity, in the L1 norm),
//! released with scale `b`, costs `Δ / b` of that household's budget ([`Scale::epsilon`]).

use dashu::integer::IBig;
use dashu::rational::RBig;

/// The noise could not be drawn: the system gave no entropy. Nothing is published then.
#[derive(Debug, thiserror::Error)]
#[error("could not draw the noise of published figures: {0}")]
pub struct NoiseError(String);

/// The scale `b` of a discrete Laplace distribution: `P[X = x] ∝ exp(-|x| / b)`, a standard
/// deviation of about `b·√2`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    exact: RBig,
    approx: f64,
}

impl Scale {
    /// The scale that costs `epsilon` for a figure of sensitivity `sensitivity`: `Δ / ε`,
    /// rounded up to a number a computer holds exactly (so the cost is at most `epsilon`).
    /// `None` unless both are positive and finite.
    pub fn for_budget(sensitivity: f64, epsilon: f64) -> Option<Self> {
        let b = sensitivity / epsilon;
        if !(b.is_finite() && b > 0.0 && sensitivity > 0.0 && epsilon > 0.0) {
            return None;
        }
        // Division rounds to nearest: one step up makes sure b ≥ Δ/ε exactly.
        let b = b.next_up();
        Some(Self {
            exact: RBig::try_from(b).ok()?,
            approx: b,
        })
    }

    /// The scale as a float (to report it and compute expected errors).
    pub fn value(&self) -> f64 {
        self.approx
    }

    /// The privacy loss of releasing, with this scale, a figure of sensitivity `sensitivity`.
    pub fn epsilon(&self, sensitivity: f64) -> f64 {
        sensitivity / self.approx
    }

    /// The variance of the distribution: `2e^{-1/b} / (1 - e^{-1/b})²`.
    pub fn variance(&self) -> f64 {
        let q = (-1.0 / self.approx).exp();
        2.0 * q / ((1.0 - q) * (1.0 - q))
    }

    /// The probability of `x`: `(1 - q) / (1 + q) · q^{|x|}` with `q = e^{-1/b}`.
    pub fn probability(&self, x: i64) -> f64 {
        let q = (-1.0 / self.approx).exp();
        (1.0 - q) / (1.0 + q) * q.powf(x.unsigned_abs() as f64)
    }

    /// One draw.
    pub fn sample(&self) -> Result<i64, NoiseError> {
        let x: IBig = opendp::traits::samplers::sample_discrete_laplace(self.exact.clone())
            .map_err(|e| NoiseError(e.to_string()))?;
        // Beyond i64 has probability below e^-(2^63 / b): never, for any scale used here.
        i64::try_from(&x).map_err(|_| NoiseError("a draw beyond 64 bits".into()))
    }

    /// `value` with noise added.
    pub fn noisy(&self, value: i64) -> Result<i64, NoiseError> {
        Ok(value.saturating_add(self.sample()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_never_costs_more_than_asked() {
        for (sensitivity, epsilon) in [(2.0, 0.3), (2.0, 1.1), (499.0, 0.15), (1.0, 10.0)] {
            let scale = Scale::for_budget(sensitivity, epsilon).unwrap();
            assert!(
                scale.epsilon(sensitivity) <= epsilon,
                "{sensitivity} {epsilon}"
            );
            assert!(scale.epsilon(sensitivity) > epsilon * (1.0 - 1e-12));
            // The exact rational is the float itself, so the loss computed from it is exact.
            assert_eq!(f64::try_from(scale.exact.clone()).ok(), Some(scale.value()));
        }
        assert!(Scale::for_budget(2.0, 0.0).is_none());
        assert!(Scale::for_budget(0.0, 1.0).is_none());
        assert!(Scale::for_budget(2.0, f64::NAN).is_none());
    }

    #[test]
    fn probabilities_sum_to_one_with_the_stated_variance() {
        let scale = Scale::for_budget(2.0, 0.7).unwrap();
        let total: f64 = (-2000..=2000).map(|x| scale.probability(x)).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        let variance: f64 = (-2000..=2000)
            .map(|x| (x * x) as f64 * scale.probability(x))
            .sum();
        assert!((variance - scale.variance()).abs() < 1e-6 * variance);
    }

    /// The sampler's draws follow the stated distribution: Pearson's χ² over 10^5 draws,
    /// values binned so that each bin expects at least 50 draws (the tails in one bin each).
    /// The threshold is the χ² quantile at 1 − 10⁻⁶ for the bins' degrees of freedom, so that
    /// a correct sampler fails once in a million runs, while a sampler off by a few percent
    /// anywhere (a wrong scale, a biased sign, a lost tail) fails every time: see
    /// `a_wrong_distribution_fails_the_same_test`.
    #[test]
    fn the_sampler_follows_the_discrete_laplace_distribution() {
        for (sensitivity, epsilon) in [(2.0, 0.4), (2.0, 1.1), (9.0, 0.15)] {
            let scale = Scale::for_budget(sensitivity, epsilon).unwrap();
            let draws: Vec<i64> = (0..100_000).map(|_| scale.sample().unwrap()).collect();
            let (statistic, freedom) = chi_square(&draws, |x| scale.probability(x));
            let critical = chi_square_quantile(freedom, 1e-6);
            assert!(
                statistic < critical,
                "b = {}: χ² = {statistic:.1} ≥ {critical:.1} with {freedom} degrees of freedom",
                scale.value()
            );
            let mean = draws.iter().sum::<i64>() as f64 / draws.len() as f64;
            let sd = (scale.variance() / draws.len() as f64).sqrt();
            assert!(mean.abs() < 6.0 * sd, "mean {mean} (sd of the mean {sd})");
        }
    }

    #[test]
    fn a_wrong_distribution_fails_the_same_test() {
        // Draws of scale b judged against scale 1.05 b: the test must see the difference, or
        // its passing above would say nothing.
        let drawn = Scale::for_budget(2.0, 1.1).unwrap();
        let judged = Scale::for_budget(2.1, 1.1).unwrap();
        let draws: Vec<i64> = (0..100_000).map(|_| drawn.sample().unwrap()).collect();
        let (statistic, freedom) = chi_square(&draws, |x| judged.probability(x));
        assert!(
            statistic > chi_square_quantile(freedom, 1e-6),
            "{statistic}"
        );
        // And draws shifted by one.
        let shifted: Vec<i64> = draws.iter().map(|x| x + 1).collect();
        let (statistic, freedom) = chi_square(&shifted, |x| drawn.probability(x));
        assert!(
            statistic > chi_square_quantile(freedom, 1e-6),
            "{statistic}"
        );
    }

    /// Pearson's statistic and its degrees of freedom. Integers are grouped from 0 outwards
    /// into bins expecting at least 50 draws each; on each side, the last bin takes the whole
    /// tail.
    fn chi_square(draws: &[i64], p: impl Fn(i64) -> f64) -> (f64, usize) {
        let n = draws.len() as f64;
        // Expected draws strictly beyond `x` on the side `step` points to.
        let beyond = |x: i64, step: i64| {
            let (mut e, mut y) = (0.0, x + step);
            loop {
                let add = p(y) * n;
                e += add;
                if add < 1e-12 {
                    return e;
                }
                y += step;
            }
        };
        let mut bins: Vec<(i64, i64, f64)> = Vec::new();
        for (start, step) in [(0i64, 1i64), (-1, -1)] {
            let (mut lo, mut x, mut e) = (start, start, 0.0);
            loop {
                e += p(x) * n;
                if e >= 50.0 {
                    let rest = beyond(x, step);
                    if rest < 50.0 {
                        let end = if step > 0 { i64::MAX } else { i64::MIN };
                        bins.push((lo.min(end), lo.max(end), e + rest));
                        break;
                    }
                    bins.push((lo.min(x), lo.max(x), e));
                    lo = x + step;
                    e = 0.0;
                }
                x += step;
            }
        }
        let mut observed = vec![0f64; bins.len()];
        for &d in draws {
            let i = bins
                .iter()
                .position(|b| b.0 <= d && d <= b.1)
                .expect("the bins cover every integer");
            observed[i] += 1.0;
        }
        let statistic = observed
            .iter()
            .zip(&bins)
            .map(|(o, b)| (o - b.2) * (o - b.2) / b.2)
            .sum();
        (statistic, bins.len() - 1)
    }

    /// The χ² quantile at upper tail `alpha` for `k` degrees of freedom (Wilson–Hilferty,
    /// accurate to a fraction of a percent for k ≥ 10, which every test here has).
    fn chi_square_quantile(k: usize, alpha: f64) -> f64 {
        let k = k as f64;
        let z = normal_quantile(1.0 - alpha);
        let a = 2.0 / (9.0 * k);
        k * (1.0 - a + z * a.sqrt()).powi(3)
    }

    /// The standard normal quantile (Acklam's rational approximation, relative error 1e-9),
    /// its coefficients as published.
    #[allow(clippy::excessive_precision)]
    fn normal_quantile(p: f64) -> f64 {
        const A: [f64; 6] = [
            -3.969683028665376e+01,
            2.209460984245205e+02,
            -2.759285104469687e+02,
            1.383577518672690e+02,
            -3.066479806614716e+01,
            2.506628277459239e+00,
        ];
        const B: [f64; 5] = [
            -5.447609879822406e+01,
            1.615858368580409e+02,
            -1.556989798598866e+02,
            6.680131188771972e+01,
            -1.328068155288572e+01,
        ];
        const C: [f64; 6] = [
            -7.784894002430293e-03,
            -3.223964580411365e-01,
            -2.400758277161838e+00,
            -2.549732539343734e+00,
            4.374664141464968e+00,
            2.938163982698783e+00,
        ];
        const D: [f64; 4] = [
            7.784695709041462e-03,
            3.224671290700398e-01,
            2.445134137142996e+00,
            3.754408661907416e+00,
        ];
        let q = if p < 0.5 { p } else { 1.0 - p };
        let r = (-2.0 * q.ln()).sqrt();
        let x = (((((C[0] * r + C[1]) * r + C[2]) * r + C[3]) * r + C[4]) * r + C[5])
            / ((((D[0] * r + D[1]) * r + D[2]) * r + D[3]) * r + 1.0);
        let x = if q < 0.02425 {
            x
        } else {
            let q = p - 0.5;
            let r = q * q;
            return (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
                / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0);
        };
        if p < 0.5 { x } else { -x }
    }
}
