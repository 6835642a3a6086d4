//! Typed argument policies: for one program, the subcommands, the options
//! each accepts (a flag, or a value of a [`ValueRule`] kind) and the
//! positionals. An argument list is checked the way a command-line parser
//! would read it, and anything the policy does not name is refused: an
//! unknown option, a repeated one, an attached short value (`-mfoo`), a
//! missing subcommand, a positional before `--` where the policy wants it
//! after, a required option left out, a value given apart from an option
//! that wants it attached. Being stricter than the program is safe;
//! accepting something the program would read differently is not, so
//! ambiguous forms are refused.

use serde::{Deserialize, Serialize};

use crate::value::{ValueContext, ValueRule};

/// The policy of a program: its top-level command.
pub type ArgPolicy = Command;

/// A command or subcommand.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Command {
    /// The subcommand's name (ignored for the top level).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub options: Vec<OptionRule>,
    #[serde(default)]
    pub subcommands: Vec<Command>,
    /// A subcommand must follow (the bare command would do something else,
    /// e.g. start an interactive program).
    #[serde(default)]
    pub subcommand_required: bool,
    #[serde(default)]
    pub positionals: Vec<Positional>,
    /// Positionals must follow `--`, so none can be read as an option or a subcommand.
    #[serde(default)]
    pub positionals_after_separator: bool,
}

/// An option and the names it is spelled with (e.g. `-m` and `--model`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OptionRule {
    pub names: Vec<String>,
    /// The kind of value it takes; `None` for a flag.
    #[serde(default)]
    pub value: Option<ValueRule>,
    /// May be given more than once.
    #[serde(default)]
    pub repeat: bool,
    /// Must be given (e.g. the flag that makes the program non-interactive).
    #[serde(default)]
    pub required: bool,
    /// The value must be attached (`--name=value`), never the next argument:
    /// for free text given to a program that looks for flags anywhere in its
    /// argument list, where a separate value such as `--debug` could be
    /// mistaken for one. Only for `--long` options that take a value.
    #[serde(default)]
    pub attached: bool,
}

impl OptionRule {
    /// An option named `names` taking a value of `value` (`None`: a flag), given at most once.
    pub fn new(names: &[&str], value: Option<ValueRule>) -> Self {
        Self {
            names: names.iter().map(|s| s.to_string()).collect(),
            value,
            repeat: false,
            required: false,
            attached: false,
        }
    }

    /// The same option, which must be given.
    pub fn required(self) -> Self {
        Self { required: true, ..self }
    }

    /// The same option, whose value must be attached (`--name=value`).
    pub fn attached(self) -> Self {
        Self { attached: true, ..self }
    }

    /// The same option, which may be given more than once.
    pub fn repeated(self) -> Self {
        Self { repeat: true, ..self }
    }
}

/// A positional argument.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Positional {
    pub name: String,
    pub value: ValueRule,
    #[serde(default)]
    pub optional: bool,
}

impl Command {
    /// Refuse a policy that cannot be checked: bad patterns, options not
    /// spelled as options, names given twice.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for option in &self.options {
            for name in &option.names {
                if !(name.starts_with("--") && name.len() > 2 || name.len() == 2 && name.starts_with('-')) {
                    return Err(format!("option name {name:?} must be `-x` or `--long`"));
                }
                if !names.insert(name) {
                    return Err(format!("option {name:?} is listed twice in `{}`", self.shown_name()));
                }
            }
            if let Some(value) = &option.value {
                value.validate().map_err(|e| format!("option {}: {e}", option.names.join("/")))?;
            }
            if option.attached
                && (option.value.is_none() || option.names.iter().any(|n| !n.starts_with("--")))
            {
                return Err(format!(
                    "option {}: only `--long` options that take a value can require it attached",
                    option.names.join("/")
                ));
            }
        }
        for positional in &self.positionals {
            positional.value.validate().map_err(|e| format!("positional {}: {e}", positional.name))?;
        }
        let mut required_after_optional = false;
        for pair in self.positionals.windows(2) {
            required_after_optional |= pair[0].optional && !pair[1].optional;
        }
        if required_after_optional {
            return Err(format!("in `{}` a required positional follows an optional one", self.shown_name()));
        }
        self.subcommands.iter().try_for_each(Command::validate)
    }

    /// Check `args` (without the program name). The error names the
    /// argument, what was expected, and where in the command it stood.
    pub fn check(&self, program: &str, args: &[String], context: &ValueContext) -> Result<(), String> {
        let mut node = self;
        let mut path = program.to_string();
        let mut seen: Vec<&OptionRule> = Vec::new();
        let mut positionals = 0usize;
        let mut after_separator = false;
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if !after_separator && arg == "--" {
                after_separator = true;
                continue;
            }
            if !after_separator && arg.starts_with('-') && arg != "-" {
                let (name, inline) = match arg.split_once('=') {
                    Some((name, value)) if arg.starts_with("--") => (name, Some(value)),
                    _ => (arg.as_str(), None),
                };
                let Some(rule) = node.options.iter().find(|o| o.names.iter().any(|n| n == name)) else {
                    return Err(format!(
                        "`{path}` does not allow the option {arg:?} (allowed: {})",
                        node.option_list()
                    ));
                };
                if !rule.repeat && seen.iter().any(|s| std::ptr::eq(*s, rule)) {
                    return Err(format!("`{path}` allows {name} only once"));
                }
                seen.push(rule);
                match (&rule.value, inline) {
                    (None, None) => {}
                    (None, Some(_)) => return Err(format!("`{path}`: {name} is a flag and takes no value")),
                    (Some(_), None) if rule.attached => {
                        return Err(format!("`{path}`: {name} takes its value attached, as {name}=<value>"));
                    }
                    (Some(kind), inline) => {
                        let value = match inline {
                            Some(value) => value,
                            None => {
                                let Some(value) = args.get(i) else {
                                    return Err(format!("`{path}`: {name} needs a value ({})", kind.show()));
                                };
                                i += 1;
                                value.as_str()
                            }
                        };
                        kind.check(value, context).map_err(|e| format!("`{path}` {name}: {e}"))?;
                    }
                }
                continue;
            }
            if !after_separator
                && positionals == 0
                && let Some(sub) = node.subcommands.iter().find(|s| s.name == *arg)
            {
                node.check_required(&path, &seen)?;
                node = sub;
                path = format!("{path} {arg}");
                seen.clear();
                continue;
            }
            if node.positionals_after_separator && !after_separator {
                return Err(format!(
                    "`{path}`: the argument {arg:?} must follow `--` (or is not a subcommand: {})",
                    node.subcommand_list()
                ));
            }
            let Some(rule) = node.positionals.get(positionals) else {
                return Err(format!("`{path}` takes no further argument, but got {arg:?}"));
            };
            rule.value.check(arg, context).map_err(|e| format!("`{path}` <{}>: {e}", rule.name))?;
            positionals += 1;
        }
        if node.subcommand_required {
            return Err(format!("`{path}` needs a subcommand ({})", node.subcommand_list()));
        }
        node.check_required(&path, &seen)?;
        if let Some(missing) = node.positionals.get(positionals).filter(|p| !p.optional) {
            return Err(format!("`{path}` needs <{}>", missing.name));
        }
        Ok(())
    }

    /// Every required option of this command was among `seen`.
    fn check_required(&self, path: &str, seen: &[&OptionRule]) -> Result<(), String> {
        match self.options.iter().find(|o| o.required && !seen.iter().any(|s| std::ptr::eq(*s, *o))) {
            Some(missing) => Err(format!("`{path}` needs the option {}", missing.names.join("/"))),
            None => Ok(()),
        }
    }

    fn shown_name(&self) -> &str {
        if self.name.is_empty() { "(top level)" } else { &self.name }
    }

    fn option_list(&self) -> String {
        if self.options.is_empty() {
            return "none".into();
        }
        self.options.iter().map(|o| o.names.join("/")).collect::<Vec<_>>().join(", ")
    }

    fn subcommand_list(&self) -> String {
        if self.subcommands.is_empty() {
            return "none".into();
        }
        self.subcommands.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// One line per command path, for `warden plugins`.
    pub fn describe(&self, program: &str) -> Vec<String> {
        let mut lines = Vec::new();
        self.describe_into(program, &mut lines);
        lines
    }

    fn describe_into(&self, path: &str, lines: &mut Vec<String>) {
        let options: Vec<String> = self
            .options
            .iter()
            .map(|o| match &o.value {
                None => o.names.join("/"),
                Some(v) => format!("{} <{}>", o.names.join("/"), v.show()),
            })
            .collect();
        let positionals: Vec<String> = self
            .positionals
            .iter()
            .map(|p| {
                if p.optional {
                    format!("[{}: {}]", p.name, p.value.show())
                } else {
                    format!("<{}: {}>", p.name, p.value.show())
                }
            })
            .collect();
        let separator = if self.positionals_after_separator && !positionals.is_empty() { "--" } else { "" };
        let options = if options.is_empty() { String::new() } else { format!("[{}]", options.join(", ")) };
        let parts = [path.to_string(), options, separator.to_string(), positionals.join(" ")];
        lines.push(parts.iter().filter(|p| !p.is_empty()).cloned().collect::<Vec<_>>().join(" "));
        for sub in &self.subcommands {
            sub.describe_into(&format!("{path} {}", sub.name), lines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn policy() -> Command {
        let flag = |names: &[&str]| OptionRule {
            names: names.iter().map(|s| s.to_string()).collect(),
            value: None,
            repeat: false,
            required: false,
            attached: false,
        };
        Command {
            subcommand_required: true,
            subcommands: vec![Command {
                name: "log".into(),
                options: vec![
                    flag(&["--oneline"]),
                    OptionRule {
                        names: vec!["-n".into(), "--max-count".into()],
                        value: Some(ValueRule::Pattern("[0-9]{1,4}".into())),
                        repeat: false,
                        required: false,
                        attached: false,
                    },
                ],
                positionals: vec![Positional {
                    name: "rev".into(),
                    value: ValueRule::Pattern("[a-f0-9]{7,40}".into()),
                    optional: true,
                }],
                positionals_after_separator: true,
                ..Command::default()
            }],
            ..Command::default()
        }
    }

    fn check(items: &[&str]) -> Result<(), String> {
        policy().check("git", &args(items), &ValueContext::default())
    }

    #[test]
    fn accepts_what_it_names() {
        check(&["log"]).unwrap();
        check(&["log", "--oneline", "-n", "5", "--", "abcdef0"]).unwrap();
        check(&["log", "--max-count=5"]).unwrap();
    }

    #[test]
    fn refuses_everything_else() {
        assert!(check(&[]).unwrap_err().contains("needs a subcommand"));
        assert!(
            check(&["log", "--exec=sh"]).unwrap_err().contains("does not allow the option \"--exec=sh\"")
        );
        assert!(
            check(&["log", "-n5"]).unwrap_err().contains("does not allow"),
            "attached short values are refused"
        );
        assert!(check(&["log", "-n", "5", "-n", "6"]).unwrap_err().contains("only once"));
        assert!(check(&["log", "-n"]).unwrap_err().contains("needs a value"));
        assert!(check(&["log", "-n", "x"]).unwrap_err().contains("does not match"));
        assert!(check(&["log", "--oneline=1"]).unwrap_err().contains("takes no value"));
        assert!(check(&["log", "abcdef0"]).unwrap_err().contains("must follow `--`"));
        assert!(check(&["log", "--", "abcdef0", "abcdef1"]).unwrap_err().contains("no further argument"));
        assert!(check(&["push"]).unwrap_err().contains("must follow") || check(&["push"]).is_err());
        assert!(
            check(&["--oneline", "log"]).unwrap_err().contains("does not allow"),
            "options belong to their command"
        );
    }

    #[test]
    fn after_the_separator_everything_is_positional() {
        assert!(check(&["log", "--", "--exec=sh"]).unwrap_err().contains("<rev>"));
        assert!(check(&["log", "--", "log"]).unwrap_err().contains("<rev>"));
    }

    #[test]
    fn required_and_attached_options() {
        let mut p = policy();
        p.subcommands[0].options[0].required = true;
        p.subcommands[0].options.push(OptionRule {
            names: vec!["--grep".into()],
            value: Some(ValueRule::Text),
            repeat: false,
            required: false,
            attached: true,
        });
        p.validate().unwrap();
        let check = |items: &[&str]| p.check("git", &args(items), &ValueContext::default());
        assert!(check(&["log"]).unwrap_err().contains("needs the option --oneline"));
        check(&["log", "--oneline", "--grep=--exec=sh"]).unwrap();
        let err = check(&["log", "--oneline", "--grep", "x"]).unwrap_err();
        assert!(err.contains("attached, as --grep=<value>"), "{err}");
        let mut bad = policy();
        bad.subcommands[0].options[1].attached = true;
        assert!(bad.validate().unwrap_err().contains("attached"), "-n is short");
        let mut bad = policy();
        bad.subcommands[0].options[0].attached = true;
        assert!(bad.validate().unwrap_err().contains("attached"), "a flag has no value");
    }

    #[test]
    fn validation_catches_bad_policies() {
        let mut p = policy();
        p.subcommands[0].options[0].names = vec!["oneline".into()];
        assert!(p.validate().unwrap_err().contains("must be"));
        let mut p = policy();
        p.subcommands[0].options[1].value = Some(ValueRule::Pattern("(".into()));
        assert!(p.validate().is_err());
        policy().validate().unwrap();
    }

    #[test]
    fn parses_from_toml() {
        let p: Command = toml::from_str(
            r#"
            subcommand-required = true
            [[subcommands]]
            name = "log"
            positionals-after-separator = true
            options = [ { names = ["-n"], value = { pattern = "[0-9]+" } }, { names = ["--oneline"] } ]
            positionals = [ { name = "rev", value = "uuid", optional = true } ]
            "#,
        )
        .unwrap();
        p.validate().unwrap();
        assert!(p.check("git", &args(&["log", "-n", "3"]), &ValueContext::default()).is_ok());
    }
}
