//! Parameter spaces: what a trial's assignments may be, and the maps between values and the
//! coordinates the samplers work in.

use std::fmt;

use crate::SearchError;

/// One parameter's value in an assignment.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An `int` parameter's value.
    Int(i64),
    /// A `double` or `discrete` parameter's value.
    Float(f64),
    /// A `categorical` parameter's value.
    Str(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Str(v) => f.write_str(v),
        }
    }
}

/// A trial's parameter values, in the order of the space's parameters.
pub type Assignment = Vec<(String, Value)>;

/// Where a parameter's values lie.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    /// Real numbers in `[min, max]`, optionally log-uniform or on a grid `min + k * step`.
    Double {
        /// Lower bound (inclusive).
        min: f64,
        /// Upper bound (inclusive).
        max: f64,
        /// Sample uniformly in log space (`logUniform`).
        log: bool,
        /// Grid spacing; must divide `max - min`.
        step: Option<f64>,
    },
    /// Integers `min, min + step, ..., max`, optionally log-uniform (then `step` is 1).
    Int {
        /// Lower bound (inclusive).
        min: i64,
        /// Upper bound (inclusive).
        max: i64,
        /// Sample uniformly in log space (`logUniform`).
        log: bool,
        /// Grid spacing (1 when not given); must divide `max - min`.
        step: i64,
    },
    /// One of a list of names.
    Categorical(Vec<String>),
    /// One of a list of numbers (a `discrete` parameter).
    Discrete(Vec<f64>),
}

/// A named parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// The hyperparameter's name.
    pub name: String,
    /// Its values.
    pub domain: Domain,
}

/// The coordinate system a sampler sees for one parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Coord {
    /// A number in `[low, high]` (value space), log-scaled when `log`, on a grid when `step`.
    Numeric {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
        /// Log scale.
        log: bool,
        /// Grid spacing, if any (1 for integers).
        step: Option<f64>,
    },
    /// An index into a list of `n` choices.
    Choice {
        /// How many choices.
        n: usize,
    },
}

impl Parameter {
    /// The sampler's view of this parameter.
    pub fn coord(&self) -> Coord {
        match &self.domain {
            Domain::Double {
                min,
                max,
                log,
                step,
            } => Coord::Numeric {
                low: *min,
                high: *max,
                log: *log,
                step: *step,
            },
            Domain::Int {
                min,
                max,
                log,
                step,
            } => Coord::Numeric {
                low: *min as f64,
                high: *max as f64,
                log: *log,
                step: Some(*step as f64),
            },
            Domain::Categorical(list) => Coord::Choice { n: list.len() },
            Domain::Discrete(list) => Coord::Choice { n: list.len() },
        }
    }

    /// The coordinate of a value (a number, or a choice's index); `None` if it is not in the space.
    pub fn encode(&self, value: &Value) -> Option<f64> {
        if !self.contains(value) {
            return None;
        }
        match (&self.domain, value) {
            (Domain::Categorical(list), Value::Str(s)) => {
                list.iter().position(|c| c == s).map(|i| i as f64)
            }
            (Domain::Discrete(list), v) => {
                let x = number(v)?;
                list.iter().position(|c| *c == x).map(|i| i as f64)
            }
            (_, v) => number(v),
        }
    }

    /// The value at a coordinate: numbers are clamped to the bounds and snapped to the grid,
    /// indices clamped to the list.
    pub fn decode(&self, x: f64) -> Value {
        match &self.domain {
            Domain::Double { min, max, step, .. } => Value::Float(snap(x, *min, *max, *step)),
            Domain::Int { min, max, step, .. } => {
                let v = snap(x, *min as f64, *max as f64, Some(*step as f64));
                Value::Int((v.round() as i64).clamp(*min, *max))
            }
            Domain::Categorical(list) => Value::Str(list[index(x, list.len())].clone()),
            Domain::Discrete(list) => Value::Float(list[index(x, list.len())]),
        }
    }

    /// The value at `u` in `[0, 1)`: uniform (or log-uniform) over the domain, every grid point
    /// and list entry equally likely (log-uniform grids excepted).
    pub fn from_unit(&self, u: f64) -> Value {
        let u = u.clamp(0.0, 1.0);
        match self.coord() {
            Coord::Choice { n } => self.decode((u * n as f64).floor()),
            Coord::Numeric {
                low,
                high,
                log: true,
                step,
            } => {
                let half = step.map_or(0.0, |s| s / 2.0);
                let (a, b) = ((low - half).ln(), (high + half).ln());
                self.decode((a + u * (b - a)).exp())
            }
            Coord::Numeric {
                low,
                high,
                step: Some(step),
                ..
            } => {
                let count = grid_count(low, high, step);
                let k = ((u * count as f64).floor() as usize).min(count - 1);
                self.decode(low + k as f64 * step)
            }
            Coord::Numeric {
                low,
                high,
                step: None,
                ..
            } => self.decode(low + u * (high - low)),
        }
    }

    /// Where a numeric coordinate lies in `[0, 1]`, the inverse of [`Parameter::from_unit`].
    pub fn to_unit(&self, x: f64) -> f64 {
        let u = match self.coord() {
            Coord::Choice { n } => (x + 0.5) / n as f64,
            Coord::Numeric {
                low,
                high,
                log: true,
                step,
            } => {
                let half = step.map_or(0.0, |s| s / 2.0);
                let (a, b) = ((low - half).ln(), (high + half).ln());
                (x.ln() - a) / (b - a)
            }
            Coord::Numeric {
                low,
                high,
                step: Some(step),
                ..
            } => (x - low + step / 2.0) / (high - low + step),
            Coord::Numeric {
                low,
                high,
                step: None,
                ..
            } => (x - low) / (high - low),
        };
        u.clamp(0.0, 1.0)
    }

    /// Whether a value belongs to this parameter's domain.
    pub fn contains(&self, value: &Value) -> bool {
        match (&self.domain, value) {
            (Domain::Double { min, max, step, .. }, Value::Float(v)) => {
                *v >= *min && *v <= *max && step.is_none_or(|s| on_grid(*v, *min, s, *max - *min))
            }
            (Domain::Int { min, max, step, .. }, Value::Int(v)) => {
                v >= min && v <= max && (v - min) % step == 0
            }
            (Domain::Categorical(list), Value::Str(s)) => list.contains(s),
            (Domain::Discrete(list), v) => number(v).is_some_and(|x| list.contains(&x)),
            _ => false,
        }
    }

    /// Every value of a finite domain, in order: the grid of a stepped `double`, every `int`
    /// on its step, every list entry. A `double` without `step` has no grid.
    pub fn grid_values(&self) -> Result<Vec<Value>, SearchError> {
        Ok(match &self.domain {
            Domain::Double { step: None, .. } => {
                return Err(SearchError::Space(format!(
                    "parameter {}: grid search needs a `step` for a double parameter",
                    self.name
                )))
            }
            Domain::Double {
                min,
                max,
                step: Some(step),
                ..
            } => (0..grid_count(*min, *max, *step))
                .map(|k| self.decode(min + k as f64 * step))
                .collect(),
            Domain::Int { min, max, step, .. } => ((*min..=*max).step_by(*step as usize))
                .map(Value::Int)
                .collect(),
            Domain::Categorical(list) => list.iter().cloned().map(Value::Str).collect(),
            Domain::Discrete(list) => list.iter().copied().map(Value::Float).collect(),
        })
    }

    fn validate(&self) -> Result<(), String> {
        match &self.domain {
            Domain::Double {
                min,
                max,
                log,
                step,
            } => {
                if !min.is_finite() || !max.is_finite() {
                    return Err("min and max must be finite numbers".into());
                }
                if min >= max {
                    return Err(format!("min ({min}) must be less than max ({max})"));
                }
                if *log && *min <= 0.0 {
                    return Err(format!("logUniform needs min > 0 (min is {min})"));
                }
                if let Some(step) = step {
                    if *log {
                        return Err("step cannot be combined with logUniform".into());
                    }
                    if !step.is_finite() || *step <= 0.0 {
                        return Err(format!("step must be a positive number (step is {step})"));
                    }
                    if !on_grid(*max, *min, *step, max - min) {
                        return Err(format!(
                            "step {step} does not divide the range [{min}, {max}]"
                        ));
                    }
                }
            }
            Domain::Int {
                min,
                max,
                log,
                step,
            } => {
                if min >= max {
                    return Err(format!("min ({min}) must be less than max ({max})"));
                }
                if *log && *min <= 0 {
                    return Err(format!("logUniform needs min > 0 (min is {min})"));
                }
                if *step <= 0 {
                    return Err(format!("step must be a positive integer (step is {step})"));
                }
                if *log && *step != 1 {
                    return Err("step cannot be combined with logUniform".into());
                }
                if (max - min) % step != 0 {
                    return Err(format!(
                        "step {step} does not divide the range [{min}, {max}]"
                    ));
                }
            }
            Domain::Categorical(list) => {
                if list.is_empty() {
                    return Err("the list of values is empty".into());
                }
                if let Some(dup) = list
                    .iter()
                    .enumerate()
                    .find(|(i, v)| list[..*i].contains(v))
                {
                    return Err(format!("the list names {} twice", dup.1));
                }
            }
            Domain::Discrete(list) => {
                if list.is_empty() {
                    return Err("the list of values is empty".into());
                }
                if list.iter().any(|v| !v.is_finite()) {
                    return Err("the list holds a value that is not a finite number".into());
                }
                if let Some(dup) = list
                    .iter()
                    .enumerate()
                    .find(|(i, v)| list[..*i].contains(v))
                {
                    return Err(format!("the list holds {} twice", dup.1));
                }
            }
        }
        Ok(())
    }
}

/// The parameters searched over, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    params: Vec<Parameter>,
}

impl Space {
    /// A space from its parameters: names unique, every domain well-formed.
    pub fn new(params: Vec<Parameter>) -> Result<Space, SearchError> {
        if params.is_empty() {
            return Err(SearchError::Space("no parameters to search over".into()));
        }
        for (i, p) in params.iter().enumerate() {
            if params[..i].iter().any(|q| q.name == p.name) {
                return Err(SearchError::Space(format!(
                    "parameter {} is declared twice",
                    p.name
                )));
            }
            p.validate()
                .map_err(|e| SearchError::Space(format!("parameter {}: {e}", p.name)))?;
        }
        Ok(Space { params })
    }

    /// The parameters, in declaration order.
    pub fn params(&self) -> &[Parameter] {
        &self.params
    }

    /// Whether an assignment gives every parameter, in order, a value in its domain.
    pub fn contains(&self, assignment: &Assignment) -> bool {
        assignment.len() == self.params.len()
            && self
                .params
                .iter()
                .zip(assignment)
                .all(|(p, (name, v))| &p.name == name && p.contains(v))
    }

    /// The coordinates of an assignment, or `None` when it does not belong to this space.
    pub fn encode(&self, assignment: &Assignment) -> Option<Vec<f64>> {
        if assignment.len() != self.params.len() {
            return None;
        }
        self.params
            .iter()
            .zip(assignment)
            .map(|(p, (name, v))| (&p.name == name).then(|| p.encode(v)).flatten())
            .collect()
    }

    /// The assignment at the given coordinates.
    pub fn decode(&self, xs: &[f64]) -> Assignment {
        self.params
            .iter()
            .zip(xs)
            .map(|(p, x)| (p.name.clone(), p.decode(*x)))
            .collect()
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Str(_) => None,
    }
}

fn index(x: f64, n: usize) -> usize {
    if x.is_finite() {
        (x.round().max(0.0) as usize).min(n - 1)
    } else {
        0
    }
}

/// How many grid points `low, low + step, ..., high` there are.
pub(crate) fn grid_count(low: f64, high: f64, step: f64) -> usize {
    ((high - low) / step).round() as usize + 1
}

fn on_grid(v: f64, low: f64, step: f64, range: f64) -> bool {
    let k = (v - low) / step;
    (k - k.round()).abs() * step <= 1e-9 * range.abs().max(step)
}

fn snap(x: f64, low: f64, high: f64, step: Option<f64>) -> f64 {
    let x = if x.is_finite() { x } else { low };
    match step {
        Some(s) => {
            let k = ((x - low) / s)
                .round()
                .clamp(0.0, (grid_count(low, high, s) - 1) as f64);
            (low + k * s).min(high)
        }
        None => x.clamp(low, high),
    }
}
