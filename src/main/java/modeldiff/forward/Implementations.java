package modeldiff.forward;

import modeldiff.forward.reference.ReferencePass;
import modeldiff.model.BadInputException;

import java.util.List;

/** Maps an implementation spec ("reference", "lowp:bf16", ...) to a pass. */
public final class Implementations {
    private Implementations() {
    }

    public static List<String> available() {
        return List.of("reference");
    }

    public static ForwardPass create(String spec) {
        if (spec.equals("reference")) return new ReferencePass();
        throw new BadInputException("unknown implementation '" + spec + "'; available: " + String.join(", ", available()));
    }
}
