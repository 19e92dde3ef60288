//! `kubepki verify`.
