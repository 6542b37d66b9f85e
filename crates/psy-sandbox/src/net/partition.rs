//! The nftables scripts behind partitions: one `bridge` family table per scenario whose
//! `forward` chain drops frames between the ports of two sides.
//!
//! Rules match bridge ports by name (`iifname`, `oifname`), never addresses: a node cannot
//! forge its way around them, and unicast, broadcast, ARP and IPv6 are cut alike. Each side
//! lists both names a node's port can have (its veth, or its delay-line tap while shaped), so
//! shaping a partitioned node keeps it partitioned. The forward hook only sees frames between
//! ports, so nodes outside both sides, and the driver, keep every link.
//!
//! Every change only inserts rules at the top of the chain, never deletes: a partition's two
//! drop rules, or for `heal` one `accept` that shadows everything below it (rules are
//! evaluated top down and stop at the first verdict). Deleting rules or set elements costs
//! nf_tables about 10 ms more per transaction (it waits for readers to leave the old rules),
//! half the 20 ms a fault may take. The chain grows by two rules per partition and one per
//! heal, and only the rules above the first `accept` are ever evaluated; it goes with the
//! table.

/// Creates the table and its empty chain, at the bridge family's `filter` priority (-200):
/// a chain at 0 ties with `br_netfilter`'s hook, which steals IPv4 frames and re-injects
/// them past every hook of its own priority, so Debian's kernel (with `br_netfilter` loaded)
/// let TCP through such a partition.
pub(super) fn create(table: &str) -> Vec<String> {
    vec![
        format!("add table bridge {table}"),
        format!(
            "add chain bridge {table} forward {{ type filter hook forward priority -200; policy accept; }}"
        ),
    ]
}

/// Adds one partition: both directions between the ports of `a` and of `b`.
pub(super) fn cut(table: &str, a: &[String], b: &[String]) -> Vec<String> {
    let (a, b) = (set(a), set(b));
    vec![
        format!("insert rule bridge {table} forward iifname {a} oifname {b} drop"),
        format!("insert rule bridge {table} forward iifname {b} oifname {a} drop"),
    ]
}

/// Removes every partition (shadows them).
pub(super) fn heal(table: &str) -> Vec<String> {
    vec![format!("insert rule bridge {table} forward accept")]
}

/// Deletes the table.
pub(super) fn delete(table: &str) -> Vec<String> {
    vec![format!("delete table bridge {table}")]
}

/// `{ "a", "b" }`: interface names are `[a-z0-9-]`, nothing to escape.
fn set(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("{{ {} }}", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_drops_both_directions_between_the_sides_only() {
        let a = ["v1".to_owned(), "t1".to_owned()];
        let b = ["v2".to_owned(), "t2".to_owned(), "v3".to_owned()];
        assert_eq!(
            cut("t", &a, &b),
            [
                r#"insert rule bridge t forward iifname { "v1", "t1" } oifname { "v2", "t2", "v3" } drop"#,
                r#"insert rule bridge t forward iifname { "v2", "t2", "v3" } oifname { "v1", "t1" } drop"#,
            ]
        );
    }
}
