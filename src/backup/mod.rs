//! Backups as files and objects: what describes a backup, what a backup or verify
//! Job reports to the operator, and the object store they are kept in.

pub mod catalog;
pub mod command;
pub mod description;
pub mod fetch;
pub mod integrity;
pub mod object_store;
pub mod report;
pub mod report_file;
pub mod retention;
pub mod store_error;
pub mod upload;
