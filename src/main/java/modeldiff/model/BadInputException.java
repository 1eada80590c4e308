package modeldiff.model;

import java.nio.file.Path;

/**
 * A problem with something the user handed us (a model folder, a trace, a flag), as opposed to a bug in modeldiff.
 * The CLI prints {@link #getMessage()} as one line and exits with code 2; the message always names the file and the
 * key or tensor at fault, because "bad config" alone sends the user hunting.
 */
public class BadInputException extends RuntimeException {
    public BadInputException(String message) {
        super(message);
    }

    public BadInputException(String message, Throwable cause) {
        super(message, cause);
    }

    public static BadInputException at(Path file, String what, String reason) {
        return new BadInputException(file + ": " + what + ": " + reason);
    }
}
