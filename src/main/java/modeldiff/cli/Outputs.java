package modeldiff.cli;

import java.nio.file.Path;

/**
 * Where commands write when no output is named: a folder under the system's temporary directory, never the source
 * tree (a run from a clone must leave `git status` clean). Commands print every path they write.
 */
final class Outputs {
    private Outputs() {
    }

    static Path defaultDir(String command) {
        return Path.of(System.getProperty("java.io.tmpdir"), "modeldiff", command);
    }
}
