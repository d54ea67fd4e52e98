package io.cauldron.tribes;

/**
 * PromptOrderInterceptor's JMX interface: Tribes registers every interceptor as an
 * MBean and logs a warning with a stack trace at each start for one without. Its counts
 * say how often a change waited for an earlier one and what ended the wait.
 */
public interface PromptOrderInterceptorMBean {
    int getOptionFlag();

    long getHoldTime();

    /** Messages that came before an earlier-numbered one, since start. */
    long getHeldCount();

    /** Times the timer skipped a gap. */
    long getReleasedByTimer();

    /** Held messages handed up before an acknowledged one of their member. */
    long getReleasedByAck();

    /** Messages that came after their gap was skipped. */
    long getLateCount();

    int getHeldNow();
}
