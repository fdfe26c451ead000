//! The one writer of Prometheus's text exposition format (0.0.4) that every
//! family the daemon serves goes through: HELP and TYPE once per family,
//! HELP text and label values escaped as the format says (`\\`, `"` and a
//! newline), so a name from a configuration file (a VRRP instance, a
//! virtual_server_group) cannot break a scrape.
//!
//! Owns: the text. Must not touch: what is counted (each part renders its
//! own figures through this).

use std::fmt::{Display, Write as _};

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (or restarts at 0).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, a sum and a count.
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// Label names and values of one sample.
pub type Labels<'a> = &'a [(&'a str, &'a dyn Display)];

/// Prometheus text, family after family.
#[derive(Debug, Default)]
pub struct Text(String);

impl Text {
    /// No families yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Start family `name`: its HELP and TYPE lines. Its samples follow.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {}", kind.name());
        self
    }

    /// One sample: `name` (the family's, or with a histogram's `_bucket`,
    /// `_sum`, `_count`) with `labels`.
    pub fn sample(&mut self, name: &str, labels: Labels<'_>, value: impl Display) -> &mut Self {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"");
                escape_into(&mut self.0, &v.to_string());
                self.0.push('"');
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
        self
    }

    /// A family of one sample without labels.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Display) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }

    /// The text.
    pub fn into_string(self) -> String {
        self.0
    }
}

fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escapes() {
        let mut t = Text::new();
        t.family("ferrovs_x_total", Kind::Counter, "Things \\ counted.\nTwice.")
            .sample("ferrovs_x_total", &[("instance", &"VI \"1\"\\\n"), ("n", &2)], 7)
            .sample("ferrovs_x_total", &[], 1.5);
        t.single("ferrovs_up", Kind::Gauge, "Up.", 1);
        assert_eq!(
            t.into_string(),
            "# HELP ferrovs_x_total Things \\\\ counted.\\nTwice.\n\
             # TYPE ferrovs_x_total counter\n\
             ferrovs_x_total{instance=\"VI \\\"1\\\"\\\\\\n\",n=\"2\"} 7\n\
             ferrovs_x_total 1.5\n\
             # HELP ferrovs_up Up.\n# TYPE ferrovs_up gauge\nferrovs_up 1\n"
        );
    }
}
