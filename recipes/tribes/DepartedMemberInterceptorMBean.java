package io.cauldron.tribes;

/**
 * DepartedMemberInterceptor's JMX interface: Tribes registers every interceptor as an
 * MBean and logs a warning with a stack trace at each start for one without.
 */
public interface DepartedMemberInterceptorMBean {
    int getOptionFlag();
}
