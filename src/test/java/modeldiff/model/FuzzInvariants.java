package modeldiff.model;

/** Checks shared by the fuzz tests on the one exception an input may cause. */
public final class FuzzInvariants {
    private FuzzInvariants() {
    }

    /** The CLI prints the message as its one line: it must be one line, and not unbounded. */
    public static void oneLine(BadInputException e) {
        String m = e.getMessage();
        if (m == null || m.isEmpty()) throw new AssertionError("empty message", e);
        if (m.indexOf('\n') >= 0 || m.indexOf('\r') >= 0) throw new AssertionError("message spans lines: " + m, e);
        if (m.length() > BadInputException.MAX_MESSAGE + 3) throw new AssertionError("message too long: " + m.length(), e);
    }
}
