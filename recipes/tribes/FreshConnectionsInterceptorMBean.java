package io.cauldron.tribes;

/**
 * FreshConnectionsInterceptor's JMX interface: Tribes registers every interceptor as
 * an MBean and logs a warning with a stack trace at each start for one without.
 */
public interface FreshConnectionsInterceptorMBean {
    int getOptionFlag();
}
