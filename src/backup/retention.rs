//! Which backups in the bucket to delete after an upload: all but the newest `keep`,
//! each description before its dump so that no reader ever sees a described dump
//! half gone, and leftovers (dumps never described, descriptions whose dump is gone)
//! only when older than the oldest backup kept, since a newer one may be an upload
//! still under way.

use crate::backup::catalog::Catalog;
use crate::backup::description::description_name;
use crate::backup::object_store::BackupStore;
use crate::backup::store_error::StoreError;

/// What to delete, in order, as object names under the prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Backups kept, oldest first.
    pub kept: Vec<String>,
    /// Objects to delete, in this order.
    pub delete: Vec<String>,
    /// Number of backups among them.
    pub backups_deleted: usize,
    /// Whether the backup just uploaded is among the `keep` newest; it is never
    /// deleted, but when it is not among them, `keep` newer backups exist and the
    /// upload has not added a backup that counts.
    pub own_kept: bool,
}

/// The plan for `catalog` after uploading `own`, keeping `keep` backups.
pub fn plan(catalog: &Catalog, keep: usize, own: &str) -> Plan {
    let first_kept = catalog.described.len().saturating_sub(keep);
    let kept = catalog.described[first_kept..].to_vec();
    let mut delete = Vec::new();
    let mut backups_deleted = 0;
    for name in &catalog.described[..first_kept] {
        if name != own {
            delete.push(description_name(name));
            delete.push(name.clone());
            backups_deleted += 1;
        }
    }
    if let Some(oldest_kept) = kept.first() {
        let older = |name: &&String| name.as_str() < oldest_kept.as_str() && name.as_str() != own;
        delete.extend(
            catalog
                .orphaned
                .iter()
                .filter(older)
                .map(|n| description_name(n)),
        );
        delete.extend(catalog.undescribed.iter().filter(older).cloned());
    }
    Plan {
        own_kept: kept.iter().any(|name| name == own),
        kept,
        delete,
        backups_deleted,
    }
}

/// Deletes what `plan` names, in order; stops at the first failure.
pub async fn apply(store: &BackupStore, plan: &Plan) -> Result<(), StoreError> {
    for name in &plan.delete {
        store.delete(name).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(day: u32) -> String {
        format!("webtoon-202612{day:02}T030000Z.sql.gz")
    }

    fn catalog(described: &[u32], undescribed: &[u32], orphaned: &[u32]) -> Catalog {
        let mut names = Vec::new();
        for day in described {
            names.push(name(*day));
            names.push(description_name(&name(*day)));
        }
        names.extend(undescribed.iter().map(|d| name(*d)));
        names.extend(orphaned.iter().map(|d| description_name(&name(*d))));
        Catalog::new(names.iter().map(String::as_str), "webtoon")
    }

    #[test]
    fn keeps_the_newest_and_deletes_descriptions_before_dumps() {
        let plan = plan(&catalog(&[1, 2, 3, 4], &[], &[]), 2, &name(4));
        assert_eq!(plan.kept, [name(3), name(4)]);
        assert_eq!(
            plan.delete,
            [
                description_name(&name(1)),
                name(1),
                description_name(&name(2)),
                name(2)
            ]
        );
        assert_eq!(plan.backups_deleted, 2);
        assert!(plan.own_kept);
    }

    #[test]
    fn leftovers_go_only_when_older_than_the_oldest_kept() {
        let plan = plan(&catalog(&[3, 5, 7], &[2, 4, 8], &[1, 6]), 2, &name(7));
        assert_eq!(plan.kept, [name(5), name(7)]);
        assert_eq!(
            plan.delete,
            [
                description_name(&name(3)),
                name(3),
                description_name(&name(1)),
                name(2),
                name(4)
            ]
        );
    }

    #[test]
    fn fewer_backups_than_keep_deletes_nothing() {
        let plan = plan(&catalog(&[1], &[], &[]), 3, &name(1));
        assert!(plan.delete.is_empty());
        assert!(plan.own_kept);
    }

    #[test]
    fn the_backup_just_uploaded_is_never_deleted() {
        let plan = plan(&catalog(&[1, 2, 3], &[], &[]), 2, &name(1));
        assert_eq!(plan.kept, [name(2), name(3)]);
        assert!(!plan.delete.contains(&name(1)));
        assert!(!plan.delete.contains(&description_name(&name(1))));
        assert!(!plan.own_kept);
    }
}
