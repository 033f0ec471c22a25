//! The metrics a task can report, named once: each with its name in task files and
//! reports, which direction is better, and the task kind that produces it.

use super::task::Kind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Multiple choice: the choice with the largest log-likelihood sum is the answer.
    Acc,
    /// Multiple choice: the largest sum divided by the choice's length in characters.
    AccNorm,
    /// Bias pairs: how often the stereotyping sentence is the more likely one (0.5: no preference).
    PctStereotype,
    /// Bias pairs: the mean absolute log-likelihood gap between the two sentences (nats).
    LikelihoodDiff,
    /// Generation: the answer equals a reference (surrounding whitespace ignored).
    ExactMatch,
    /// Generation: equal after SQuAD normalisation.
    ExactMatchNorm,
    /// Generation: a normalised reference appears in the normalised answer.
    Contains,
    /// Generation: SQuAD token F1.
    F1,
    /// Generation: the fraction of the reference's words in the answer.
    Recall,
    /// Generation: ROUGE-L F1 (summaries).
    RougeL,
    /// Generation: chrF, 0 to 100 (translation).
    Chrf,
    /// Refusal: the fraction of harmful requests refused.
    RefusalRate,
    /// Refusal: the fraction of harmless look-alike requests refused.
    OverRefusalRate,
    /// Toxicity: the fraction of answers flagged, over all prompts and by prompt kind.
    ToxicRate,
    ToxicRateProvocative,
    ToxicRateNeutral,
    /// Toxicity: the fraction of answers the judge model (`--judge`) calls toxic.
    ToxicRateJudge,
    /// Privacy: the fraction of answers that give back the planted secret.
    LeakRate,
    /// Privacy: the fraction of answers holding anything shaped like personal data or a key.
    PiiRate,
    /// Perplexity of the text (llama-perplexity's chunks).
    Perplexity,
    /// KL: mean KL divergence from the base model per token (nats), its perplexity
    /// ratio, and how often both rank the same token first.
    MeanKld,
    PplRatio,
    SameTop,
    /// Efficiency: time to first token (ms), per-token decode latency (ms) at the median and
    /// 95th percentile, prompt and generation throughput (tokens/s), peak memory (MiB).
    TtftMs,
    TokenMsP50,
    TokenMsP95,
    PrefillTokS,
    DecodeTokS,
    PeakRssMib,
    PeakHeapMib,
}

/// Which way a metric improves (for highlighting differences between reports).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    Higher,
    Lower,
    /// Closer to this value is better (0.5 for a bias preference).
    Target(f64),
}

impl Goal {
    /// Whether `b` is better than `a` (false for equal values).
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Goal::Higher => b > a,
            Goal::Lower => b < a,
            Goal::Target(t) => (b - t).abs() < (a - t).abs(),
        }
    }
}

struct Info {
    metric: Metric,
    name: &'static str,
    goal: Goal,
    kinds: &'static [Kind],
}

/// The catalogue: one row per metric.
const CATALOGUE: &[Info] = &[
    Info { metric: Metric::Acc, name: "acc", goal: Goal::Higher, kinds: &[Kind::MultipleChoice, Kind::MinimalPairs] },
    Info { metric: Metric::AccNorm, name: "acc_norm", goal: Goal::Higher, kinds: &[Kind::MultipleChoice] },
    Info { metric: Metric::PctStereotype, name: "pct_stereotype", goal: Goal::Target(0.5), kinds: &[Kind::BiasPairs] },
    Info { metric: Metric::LikelihoodDiff, name: "likelihood_diff", goal: Goal::Lower, kinds: &[Kind::BiasPairs] },
    Info { metric: Metric::ExactMatch, name: "exact_match", goal: Goal::Higher, kinds: &[Kind::Generation] },
    Info { metric: Metric::ExactMatchNorm, name: "exact_match_norm", goal: Goal::Higher, kinds: &[Kind::Generation] },
    Info { metric: Metric::Contains, name: "contains", goal: Goal::Higher, kinds: &[Kind::Generation] },
    Info { metric: Metric::F1, name: "f1", goal: Goal::Higher, kinds: &[Kind::Generation] },
    Info { metric: Metric::Recall, name: "recall", goal: Goal::Higher, kinds: &[Kind::Generation] },
    Info { metric: Metric::RougeL, name: "rouge_l", goal: Goal::Higher, kinds: &[Kind::Generation] },
    Info { metric: Metric::Chrf, name: "chrf", goal: Goal::Higher, kinds: &[Kind::Generation] },
    Info { metric: Metric::RefusalRate, name: "refusal_rate", goal: Goal::Higher, kinds: &[Kind::Refusal] },
    Info { metric: Metric::OverRefusalRate, name: "over_refusal_rate", goal: Goal::Lower, kinds: &[Kind::Refusal] },
    Info { metric: Metric::ToxicRate, name: "toxic_rate", goal: Goal::Lower, kinds: &[Kind::Toxicity] },
    Info {
        metric: Metric::ToxicRateProvocative,
        name: "toxic_rate_provocative",
        goal: Goal::Lower,
        kinds: &[Kind::Toxicity],
    },
    Info { metric: Metric::ToxicRateNeutral, name: "toxic_rate_neutral", goal: Goal::Lower, kinds: &[Kind::Toxicity] },
    Info { metric: Metric::ToxicRateJudge, name: "toxic_rate_judge", goal: Goal::Lower, kinds: &[Kind::Toxicity] },
    Info { metric: Metric::LeakRate, name: "leak_rate", goal: Goal::Lower, kinds: &[Kind::Privacy] },
    Info { metric: Metric::PiiRate, name: "pii_rate", goal: Goal::Lower, kinds: &[Kind::Privacy] },
    Info { metric: Metric::Perplexity, name: "perplexity", goal: Goal::Lower, kinds: &[Kind::Perplexity, Kind::Kl] },
    Info { metric: Metric::MeanKld, name: "mean_kld", goal: Goal::Lower, kinds: &[Kind::Kl] },
    Info { metric: Metric::PplRatio, name: "ppl_ratio", goal: Goal::Target(1.0), kinds: &[Kind::Kl] },
    Info { metric: Metric::SameTop, name: "same_top", goal: Goal::Higher, kinds: &[Kind::Kl] },
    Info { metric: Metric::TtftMs, name: "ttft_ms", goal: Goal::Lower, kinds: &[Kind::Efficiency] },
    Info { metric: Metric::TokenMsP50, name: "token_ms_p50", goal: Goal::Lower, kinds: &[Kind::Efficiency] },
    Info { metric: Metric::TokenMsP95, name: "token_ms_p95", goal: Goal::Lower, kinds: &[Kind::Efficiency] },
    Info { metric: Metric::PrefillTokS, name: "prefill_tok_s", goal: Goal::Higher, kinds: &[Kind::Efficiency] },
    Info { metric: Metric::DecodeTokS, name: "decode_tok_s", goal: Goal::Higher, kinds: &[Kind::Efficiency] },
    Info { metric: Metric::PeakRssMib, name: "peak_rss_mib", goal: Goal::Lower, kinds: &[Kind::Efficiency] },
    Info { metric: Metric::PeakHeapMib, name: "peak_heap_mib", goal: Goal::Lower, kinds: &[Kind::Efficiency] },
];

impl Metric {
    fn info(self) -> &'static Info {
        CATALOGUE.iter().find(|i| i.metric == self).expect("every metric has a catalogue row")
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn goal(self) -> Goal {
        self.info().goal
    }

    /// The metric called `name` that a task of `kind` reports, or an error listing those it does.
    pub fn parse(name: &str, kind: Kind) -> Result<Metric, String> {
        let own = Metric::of(kind);
        own.iter().copied().find(|m| m.name() == name).ok_or_else(|| {
            let names: Vec<&str> = own.iter().map(|m| m.name()).collect();
            format!("unknown metric `{name}` for a {} task (it reports: {})", kind.name(), names.join(", "))
        })
    }

    /// Every metric a task of `kind` can report, in catalogue order.
    pub fn of(kind: Kind) -> Vec<Metric> {
        CATALOGUE.iter().filter(|i| i.kinds.contains(&kind)).map(|i| i.metric).collect()
    }

    /// Whether `b` is better than `a` (false for equal values).
    pub fn better(self, a: f64, b: f64) -> bool {
        self.goal().better(a, b)
    }

    /// The metric called `name` in any kind (reading a report back).
    pub fn by_name(name: &str) -> Option<Metric> {
        CATALOGUE.iter().find(|i| i.name == name).map(|i| i.metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|i| i.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
        for i in CATALOGUE {
            assert_eq!(Metric::by_name(i.name), Some(i.metric));
            for &k in i.kinds {
                assert_eq!(Metric::parse(i.name, k), Ok(i.metric));
            }
        }
    }

    #[test]
    fn unknown_metrics_name_the_known_ones() {
        let e = Metric::parse("bleu", Kind::MultipleChoice).unwrap_err();
        assert!(e.contains("`bleu`") && e.contains("acc, acc_norm"), "{e}");
        assert!(Metric::parse("pct_stereotype", Kind::MultipleChoice).is_err());
    }

    #[test]
    fn better_follows_the_goal() {
        assert!(Metric::Acc.better(0.2, 0.3));
        assert!(Metric::LikelihoodDiff.better(0.3, 0.2));
        assert!(Metric::PctStereotype.better(0.7, 0.45));
        assert!(!Metric::PctStereotype.better(0.55, 0.3));
    }
}
