//! Sizes written in the spec: Kubernetes quantities and nginx sizes, in bytes.

/// Bytes in a Kubernetes quantity such as `512Mi`, `20Gi` or `1000k`; `None` when the
/// string is not an integer quantity with a binary or decimal unit.
pub fn quantity_bytes(quantity: &str) -> Option<u64> {
    let digits_end = quantity
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(quantity.len());
    let (digits, unit) = quantity.split_at(digits_end);
    let value: u64 = digits.parse().ok()?;
    let factor: u64 = match unit {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    value.checked_mul(factor)
}

/// Bytes in an nginx size such as `20m`, `512k` or `1g`.
pub fn nginx_size_bytes(size: &str) -> Option<u64> {
    let (digits, factor) = match size.as_bytes().last()? {
        b'k' => (&size[..size.len() - 1], 1 << 10),
        b'm' => (&size[..size.len() - 1], 1 << 20),
        b'g' => (&size[..size.len() - 1], 1 << 30),
        _ => (size, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_units() {
        assert_eq!(quantity_bytes("512Mi"), Some(512 * 1024 * 1024));
        assert_eq!(quantity_bytes("20Gi"), Some(20 << 30));
        assert_eq!(quantity_bytes("1000k"), Some(1_000_000));
        assert_eq!(quantity_bytes("7"), Some(7));
        assert_eq!(quantity_bytes("1.5Gi"), None);
        assert_eq!(quantity_bytes("10Xi"), None);
        assert_eq!(quantity_bytes("99999999999999999999Ti"), None);
    }

    #[test]
    fn nginx_sizes() {
        assert_eq!(nginx_size_bytes("20m"), Some(20 << 20));
        assert_eq!(nginx_size_bytes("64k"), Some(64 << 10));
        assert_eq!(nginx_size_bytes("100"), Some(100));
        assert_eq!(nginx_size_bytes("1m; autoindex on"), None);
        assert_eq!(nginx_size_bytes(""), None);
    }
}
