//! Why a request was refused: the kind decides the plugin-visible error, the
//! message names the problem and the setting that would allow it.

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// Not granted (or not declared): the operator could allow it.
    #[error("{0}")]
    Denied(String),
    /// Malformed: no grant could make it acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Granted but absent on this host (a program, a directory).
    #[error("{0}")]
    NotFound(String),
}

impl Denial {
    pub fn message(&self) -> &str {
        match self {
            Denial::Denied(m) | Denial::Invalid(m) | Denial::NotFound(m) => m,
        }
    }
}
