//! Warden's permission model, as plain data with no runtime types: what a
//! plugin declares it needs (its manifest), what the operator grants (the
//! configuration), their intersection (the effective policy a capability
//! enforces), and the typed argument policies that bound what a granted
//! program will do.
//!
//! Everything here is deterministic and tested on its own; the host's
//! capabilities call [`ProcessPolicy::approve`] and [`RequestLimits`], and
//! `warden plugins` / `warden plugin check` print from the same values.

pub mod argv;
pub mod claude;
pub mod codex;
pub mod database;
pub mod declaration;
pub mod denial;
pub mod env;
pub mod gemini;
pub mod pattern;
pub mod principals;
pub mod process;
pub mod program;
pub mod requests;
pub mod value;

pub use argv::{ArgPolicy, Command, OptionRule, Positional};
pub use database::DatabaseGrant;
pub use declaration::Manifest;
pub use denial::Denial;
pub use env::{EnvDeclaration, EnvGrant};
pub use pattern::{ArgPattern, name_matches};
pub use principals::PrincipalBounds;
pub use process::{ApprovedSpawn, DeclaredProgram, ProcessPolicy};
pub use program::{ArgumentCheck, ProgramGrant, ResolvedProgram};
pub use requests::{RequestLimits, Sandbox};
pub use value::{ConfigRule, ValueRule};
