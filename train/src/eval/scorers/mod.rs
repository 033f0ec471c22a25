//! How a generated answer is scored: SQuAD normalisation (`normalize`), exact match,
//! contains, token F1 and recall (`text`), ROUGE-L (`rouge`), chrF (`chrf`); and the
//! safety slice's transparent classifiers: refusal phrases (`refusal`), a toxicity word
//! list with severities (`toxicity`), planted secrets and personal-data patterns (`privacy`).

pub mod chrf;
pub mod normalize;
pub mod privacy;
pub mod refusal;
pub mod rouge;
pub mod text;
pub mod toxicity;
