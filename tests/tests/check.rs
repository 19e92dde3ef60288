//! `kubepki check`.
