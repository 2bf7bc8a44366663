//! `calculator`: exact arithmetic on an expression. Integers and decimals are exact rationals,
//! so `0.1 + 0.2` is `3/10` and `1/3 * 3` is `1`; powers with whole exponents stay exact;
//! roots, logarithms and trigonometry are computed approximately and say so.
//!
//! Arguments: `{"expression": "(1 + 2) * 3 / 4"}`.
//! Result: `{"result": "9/4", "decimal": "2.25", "exact": true}`.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive, Zero};
use serde_json::{Value, json};

/// Longest expression read.
const MAX_EXPRESSION_CHARS: usize = 10_000;
/// Largest whole exponent computed exactly.
const MAX_EXACT_EXPONENT: u32 = 4_096;
/// Most decimal digits of an exact result's numerator or denominator.
const MAX_DIGITS: u64 = 20_000;
/// Significant digits of the decimal form.
const DECIMAL_DIGITS: usize = 20;

fn main() {
    bestchat_tool_sdk::run(|args| {
        let expression = args["expression"]
            .as_str()
            .ok_or("expression must be a string")?;
        evaluate(expression).map(|n| describe(&n))
    });
}

#[derive(Debug, Clone)]
enum Num {
    Exact(BigRational),
    Approx(f64),
}

impl Num {
    fn approx(&self) -> f64 {
        match self {
            Num::Exact(r) => r.to_f64().unwrap_or(f64::NAN),
            Num::Approx(f) => *f,
        }
    }
}

fn evaluate(expression: &str) -> Result<Num, String> {
    if expression.chars().count() > MAX_EXPRESSION_CHARS {
        return Err(format!(
            "the expression is longer than {MAX_EXPRESSION_CHARS} characters"
        ));
    }
    let tokens = tokenize(expression)?;
    let mut parser = Parser { tokens, at: 0 };
    let value = parser.sum()?;
    if parser.at != parser.tokens.len() {
        return Err(format!("unexpected {:?}", parser.tokens[parser.at]));
    }
    check_size(&value)?;
    match value {
        Num::Approx(f) if !f.is_finite() => Err("the result is not a finite number".into()),
        v => Ok(v),
    }
}

fn check_size(n: &Num) -> Result<(), String> {
    if let Num::Exact(r) = n {
        let digits = r.numer().bits().max(r.denom().bits()) * 3 / 10;
        if digits > MAX_DIGITS {
            return Err(format!(
                "the exact result has more than {MAX_DIGITS} digits"
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(BigRational),
    Name(String),
    Op(char),
    Open,
    Close,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '0'..='9' | '.' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '_')
                {
                    i += 1;
                }
                let mut literal: String = chars[start..i].iter().filter(|c| **c != '_').collect();
                if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                    let mark = i;
                    i += 1;
                    if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                        i += 1;
                    }
                    let digits = i;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                    if digits == i {
                        i = mark;
                    } else {
                        literal.extend(&chars[mark..i]);
                    }
                }
                tokens.push(Token::Number(parse_number(&literal)?));
            }
            'a'..='z' | 'A'..='Z' => {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                tokens.push(Token::Name(
                    chars[start..i].iter().collect::<String>().to_lowercase(),
                ));
            }
            '+' | '-' | '*' | '/' | '%' | '^' => {
                tokens.push(Token::Op(c));
                i += 1;
            }
            '×' => {
                tokens.push(Token::Op('*'));
                i += 1;
            }
            '÷' => {
                tokens.push(Token::Op('/'));
                i += 1;
            }
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(tokens)
}

/// A decimal literal (`12`, `0.25`, `1.5e-3`) as an exact rational.
fn parse_number(literal: &str) -> Result<BigRational, String> {
    let bad = || format!("{literal:?} is not a number");
    let (mantissa, exponent) = match literal.find(['e', 'E']) {
        Some(i) => (
            &literal[..i],
            literal[i + 1..].parse::<i32>().map_err(|_| bad())?,
        ),
        None => (literal, 0),
    };
    if exponent.unsigned_abs() > MAX_EXACT_EXPONENT {
        return Err(format!("{literal:?}: the exponent is too large"));
    }
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(bad());
    }
    let digits: BigInt = format!("{whole}{fraction}").parse().map_err(|_| bad())?;
    let scale = exponent - i32::try_from(fraction.len()).map_err(|_| bad())?;
    let ten = BigInt::from(10);
    Ok(if scale >= 0 {
        BigRational::from_integer(digits * ten.pow(scale as u32))
    } else {
        BigRational::new(digits, ten.pow(scale.unsigned_abs()))
    })
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn sum(&mut self) -> Result<Num, String> {
        let mut left = self.product()?;
        while let Some(Token::Op(op @ ('+' | '-'))) = self.peek().cloned() {
            self.at += 1;
            let right = self.product()?;
            left = arithmetic(op, left, right)?;
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Num, String> {
        let mut left = self.unary()?;
        while let Some(Token::Op(op @ ('*' | '/' | '%'))) = self.peek().cloned() {
            self.at += 1;
            let right = self.unary()?;
            left = arithmetic(op, left, right)?;
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Num, String> {
        match self.peek() {
            Some(Token::Op('-')) => {
                self.at += 1;
                let value = self.unary()?;
                Ok(match value {
                    Num::Exact(r) => Num::Exact(-r),
                    Num::Approx(f) => Num::Approx(-f),
                })
            }
            Some(Token::Op('+')) => {
                self.at += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    /// `^` binds tighter than unary minus on its left and is right-associative.
    fn power(&mut self) -> Result<Num, String> {
        let base = self.atom()?;
        if let Some(Token::Op('^')) = self.peek() {
            self.at += 1;
            let exponent = self.unary()?;
            return power(base, exponent);
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Num, String> {
        match self.next() {
            Some(Token::Number(n)) => Ok(Num::Exact(n)),
            Some(Token::Open) => {
                let value = self.sum()?;
                match self.next() {
                    Some(Token::Close) => Ok(value),
                    _ => Err("a parenthesis is not closed".into()),
                }
            }
            Some(Token::Name(name)) => match name.as_str() {
                "pi" => Ok(Num::Approx(std::f64::consts::PI)),
                "e" => Ok(Num::Approx(std::f64::consts::E)),
                _ => {
                    let args = self.arguments(&name)?;
                    function(&name, args)
                }
            },
            Some(other) => Err(format!("unexpected {other:?}")),
            None => Err("the expression ends too early".into()),
        }
    }

    fn arguments(&mut self, name: &str) -> Result<Vec<Num>, String> {
        if self.next() != Some(Token::Open) {
            return Err(format!(
                "{name} is not a known constant; functions take (arguments)"
            ));
        }
        let mut args = vec![self.sum()?];
        loop {
            match self.next() {
                Some(Token::Comma) => args.push(self.sum()?),
                Some(Token::Close) => return Ok(args),
                _ => return Err(format!("{name}(…) is not closed")),
            }
        }
    }
}

fn arithmetic(op: char, left: Num, right: Num) -> Result<Num, String> {
    let result = match (left, right) {
        (Num::Exact(a), Num::Exact(b)) => match op {
            '+' => Num::Exact(a + b),
            '-' => Num::Exact(a - b),
            '*' => Num::Exact(a * b),
            '/' if b.is_zero() => return Err("division by zero".into()),
            '/' => Num::Exact(a / b),
            '%' if b.is_zero() => return Err("modulo by zero".into()),
            // The remainder with the sign of the divisor, as mathematicians mean it.
            '%' => {
                let q = (&a / &b).floor();
                Num::Exact(a - b * q)
            }
            _ => return Err(format!("unknown operator {op}")),
        },
        (a, b) => {
            let (x, y) = (a.approx(), b.approx());
            Num::Approx(match op {
                '+' => x + y,
                '-' => x - y,
                '*' => x * y,
                '/' if y == 0.0 => return Err("division by zero".into()),
                '/' => x / y,
                '%' if y == 0.0 => return Err("modulo by zero".into()),
                '%' => x - y * (x / y).floor(),
                _ => return Err(format!("unknown operator {op}")),
            })
        }
    };
    check_size(&result)?;
    Ok(result)
}

fn power(base: Num, exponent: Num) -> Result<Num, String> {
    if let (Num::Exact(b), Num::Exact(e)) = (&base, &exponent)
        && e.is_integer()
        && let Some(n) = e
            .to_integer()
            .abs()
            .to_u32()
            .filter(|n| *n <= MAX_EXACT_EXPONENT)
    {
        if b.is_zero() && e.is_negative() {
            return Err("zero to a negative power".into());
        }
        let raised = num_traits::pow(b.clone(), n as usize);
        let result = Num::Exact(if e.is_negative() {
            raised.recip()
        } else {
            raised
        });
        check_size(&result)?;
        return Ok(result);
    }
    Ok(Num::Approx(base.approx().powf(exponent.approx())))
}

fn function(name: &str, args: Vec<Num>) -> Result<Num, String> {
    let one = |args: &[Num]| -> Result<Num, String> {
        match args {
            [x] => Ok(x.clone()),
            _ => Err(format!("{name} takes one argument")),
        }
    };
    let exact_or = |x: Num, exact: fn(&BigRational) -> BigRational, approx: fn(f64) -> f64| match x
    {
        Num::Exact(r) => Num::Exact(exact(&r)),
        Num::Approx(f) => Num::Approx(approx(f)),
    };
    let approx =
        |f: fn(f64) -> f64| -> Result<Num, String> { Ok(Num::Approx(f(one(&args)?.approx()))) };
    match name {
        "abs" => Ok(exact_or(one(&args)?, |r| r.abs(), f64::abs)),
        "floor" => Ok(exact_or(one(&args)?, |r| r.floor(), f64::floor)),
        "ceil" => Ok(exact_or(one(&args)?, |r| r.ceil(), f64::ceil)),
        "round" => Ok(exact_or(one(&args)?, |r| r.round(), f64::round)),
        "min" | "max" if !args.is_empty() => {
            let pick = |a: Num, b: Num| {
                let a_first = if name == "min" {
                    a.approx() <= b.approx()
                } else {
                    a.approx() >= b.approx()
                };
                if a_first { a } else { b }
            };
            Ok(args
                .into_iter()
                .reduce(pick)
                .unwrap_or(Num::Exact(BigRational::zero())))
        }
        "sqrt" => {
            if let Num::Exact(r) = one(&args)? {
                if r.is_negative() {
                    return Err("the square root of a negative number".into());
                }
                if let Some(root) = exact_sqrt(&r) {
                    return Ok(Num::Exact(root));
                }
            }
            approx(f64::sqrt)
        }
        "ln" => approx(f64::ln),
        "log10" | "log" => approx(f64::log10),
        "exp" => approx(f64::exp),
        "sin" => approx(f64::sin),
        "cos" => approx(f64::cos),
        "tan" => approx(f64::tan),
        _ => Err(format!("unknown function {name}")),
    }
}

/// The rational square root, when there is one (`sqrt(9/4)` is `3/2`).
fn exact_sqrt(r: &BigRational) -> Option<BigRational> {
    let (n, d) = (r.numer().sqrt(), r.denom().sqrt());
    (&n * &n == *r.numer() && &d * &d == *r.denom()).then(|| BigRational::new(n, d))
}

fn describe(n: &Num) -> Value {
    match n {
        Num::Exact(r) => json!({
            "result": if r.is_integer() { r.numer().to_string() } else { format!("{}/{}", r.numer(), r.denom()) },
            "decimal": decimal(r),
            "exact": true,
        }),
        Num::Approx(f) => {
            json!({ "result": format!("{f}"), "decimal": format!("{f}"), "exact": false })
        }
    }
}

/// `r` in decimal: whole when it is whole, else to `DECIMAL_DIGITS` places, "…" when cut.
fn decimal(r: &BigRational) -> String {
    let negative = r.is_negative();
    let r = r.abs();
    let whole = r.trunc().to_integer();
    let mut rest = r.fract();
    let mut digits = String::new();
    let ten = BigRational::from_integer(BigInt::from(10));
    while !rest.is_zero() && digits.len() < DECIMAL_DIGITS {
        rest *= &ten;
        let digit = rest.trunc();
        digits.push_str(&digit.to_integer().to_string());
        rest -= digit;
    }
    let sign = if negative { "-" } else { "" };
    match (digits.is_empty(), rest.is_zero()) {
        (true, _) => format!("{sign}{whole}"),
        (false, true) => format!("{sign}{whole}.{digits}"),
        (false, false) => format!("{sign}{whole}.{digits}…"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc(expression: &str) -> Value {
        describe(&evaluate(expression).unwrap())
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(calc("0.1 + 0.2")["result"], "3/10");
        assert_eq!(calc("0.1 + 0.2")["decimal"], "0.3");
        assert_eq!(calc("1/3 * 3")["result"], "1");
        assert_eq!(calc("(1 + 2) * 3 / 4")["result"], "9/4");
        assert_eq!(calc("2^100")["result"], "1267650600228229401496703205376");
        assert_eq!(calc("2^-2")["result"], "1/4");
        assert_eq!(calc("-2^2")["result"], "-4");
        assert_eq!(calc("2^3^2")["result"], "512");
        assert_eq!(calc("7 % 3")["result"], "1");
        assert_eq!(calc("-7 % 3")["result"], "2");
        assert_eq!(calc("1.5e3 + 1_000")["result"], "2500");
        assert_eq!(calc("sqrt(9/4)")["result"], "3/2");
        assert_eq!(calc("1/3")["decimal"], "0.33333333333333333333…");
        assert_eq!(
            calc("round(7/2) + floor(-1/2) + abs(-3) + max(1, 2, 3/2)")["result"],
            "8"
        );
        assert_eq!(calc("6 × 7 ÷ 2")["result"], "21");
        assert_eq!(calc("sqrt(2)")["exact"], false);
        let pi = calc("cos(pi)");
        assert_eq!(pi["exact"], false);
        assert_eq!(pi["result"], "-1");
    }

    #[test]
    fn bad_expressions_are_explained() {
        for bad in [
            "1/0",
            "(1",
            "1 +",
            "2 $ 3",
            "foo(1)",
            "sqrt(-1)",
            "0^-1",
            "10^100000",
            "",
            "1..2",
        ] {
            assert!(evaluate(bad).is_err(), "{bad}");
        }
        let huge = "9".repeat(MAX_EXPRESSION_CHARS + 1);
        assert!(evaluate(&huge).unwrap_err().contains("longer"));
        assert!(evaluate("(2^4096)^4096").unwrap_err().contains("digits"));
    }
}
