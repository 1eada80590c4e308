package modeldiff.cli;

/**
 * Help text computed at run time. picocli expands {@code ${sys:NAME}} in descriptions when it renders them, so the
 * --impl options say which implementations run on this machine; the check loads libtorch and JCuda, so it runs
 * only when help is asked for.
 */
final class Help {
    static final String IMPLS_PROPERTY = "modeldiff.help.impls";
    /** What --impl options print when availability was not checked (help was not asked for). */
    static final String IMPLS = "${sys:" + IMPLS_PROPERTY + ":-reference, lowp:bf16, lowp:fp16, lowp:fp32, torch:fp32, torch:fp16, cuda:fp32, cuda:bf16, cuda:fp16}";

    private Help() {
    }

    static void describeImplementations() {
        System.setProperty(IMPLS_PROPERTY, Availability.implementations());
    }
}
