package modeldiff.lint;

import java.util.Locale;

/** How much a finding matters. Any {@link #ERROR} makes {@code modeldiff lint} exit 1. */
public enum Severity {
    /** Worth knowing; the release is fine as HF reads it. */
    INFO,
    /** Probably a release bug, or a place where implementations are known to disagree. */
    WARNING,
    /** The release is broken as published (or cannot be read). */
    ERROR;

    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }
}
