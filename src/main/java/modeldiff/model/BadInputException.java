package modeldiff.model;

import java.nio.file.Path;

/**
 * A problem with something the user handed us (a model folder, a trace, a flag), as opposed to a bug in modeldiff.
 * The CLI prints {@link #getMessage()} as one line and exits with code 2; the message always names the file and the
 * key or tensor at fault, because "bad config" alone sends the user hunting.
 * <p>
 * Names inside messages come from hostile files (a tensor may be called "a\nb"), so the message is made one line
 * here: control characters are written as escapes, and an over-long message is cut.
 */
public class BadInputException extends RuntimeException {
    /** Longer messages are cut: a hostile name must not flood a terminal. */
    public static final int MAX_MESSAGE = 2000;

    public BadInputException(String message) {
        super(oneLine(message));
    }

    public BadInputException(String message, Throwable cause) {
        super(oneLine(message), cause);
    }

    public static BadInputException at(Path file, String what, String reason) {
        return new BadInputException(file + ": " + what + ": " + reason);
    }

    /** Control characters (line breaks, escape sequences, NUL) as {@code \n}, {@code \u001b}...; cut past {@link #MAX_MESSAGE}. */
    public static String oneLine(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder(Math.min(s.length(), MAX_MESSAGE + 16));
        for (int i = 0; i < s.length() && b.length() < MAX_MESSAGE; i++) {
            char c = s.charAt(i);
            if (c == '\n') b.append("\\n");
            else if (c == '\r') b.append("\\r");
            else if (c == '\t') b.append("\\t");
            else if (Character.isISOControl(c) || c == '\u2028' || c == '\u2029' || c == '\u0085')
                b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        if (b.length() >= MAX_MESSAGE && b.length() < s.length()) b.append("...");
        return b.toString();
    }
}
