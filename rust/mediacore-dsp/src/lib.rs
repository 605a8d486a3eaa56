//! Codecs and DSP (being written).
