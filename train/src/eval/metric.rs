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
}

/// Which way a metric improves (for highlighting differences between reports).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    Higher,
    Lower,
    /// Closer to this value is better (0.5 for a bias preference).
    Target(f64),
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
        match self.goal() {
            Goal::Higher => b > a,
            Goal::Lower => b < a,
            Goal::Target(t) => (b - t).abs() < (a - t).abs(),
        }
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
