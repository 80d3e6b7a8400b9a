//! espeak-ng voice: see below.
