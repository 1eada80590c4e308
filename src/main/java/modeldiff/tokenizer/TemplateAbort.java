package modeldiff.tokenizer;

/**
 * Stops a chat template's rendering at once. An Error, not an Exception, so that jinjava's per-node error handling
 * (which records an exception and renders on) cannot swallow it: a hostile loop ends at its next step.
 */
final class TemplateAbort extends Error {
    private static final long serialVersionUID = 1L;

    TemplateAbort(String message) {
        super(message, null, false, false);
    }
}
