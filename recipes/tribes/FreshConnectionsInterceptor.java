package io.cauldron.tribes;

import org.apache.catalina.tribes.Channel;
import org.apache.catalina.tribes.ChannelException;
import org.apache.catalina.tribes.ChannelSender;
import org.apache.catalina.tribes.Member;
import org.apache.catalina.tribes.group.ChannelInterceptorBase;
import org.apache.catalina.tribes.group.GroupChannel;
import org.apache.catalina.tribes.transport.ReplicationTransmitter;

/**
 * Has the channel's sender close its connections to a member that disappears, and
 * again when it is added (back), so that nothing is sent to it over a connection
 * opened before it went away.
 *
 * Tribes tells the sender nothing of membership changes (Tomcat 10.1.60's
 * ChannelCoordinator never calls ChannelSender.remove). Put it last, next to the
 * transport: it sees the membership's own changes, before any interceptor above
 * holds one back. It needs FreshConnectionsSender as the Transport (the stock
 * pooled sender's remove does nothing), and says so at start.
 */
public class FreshConnectionsInterceptor extends ChannelInterceptorBase implements FreshConnectionsInterceptorMBean {

    @Override
    public void start(int svc) throws ChannelException {
        ChannelSender sender = channelSender();
        if (!(sender instanceof ReplicationTransmitter)
                || !(((ReplicationTransmitter) sender).getTransport() instanceof FreshConnectionsSender)) {
            throw new ChannelException(getClass().getName() + " needs the Transport "
                    + FreshConnectionsSender.class.getName() + ", not "
                    + (sender instanceof ReplicationTransmitter
                            ? ((ReplicationTransmitter) sender).getTransport() : sender));
        }
        super.start(svc);
    }

    @Override
    public void memberAdded(Member member) {
        closeConnectionsTo(member);
        super.memberAdded(member);
    }

    @Override
    public void memberDisappeared(Member member) {
        closeConnectionsTo(member);
        super.memberDisappeared(member);
    }

    private void closeConnectionsTo(Member member) {
        ChannelSender sender = channelSender();
        if (sender != null) {
            sender.remove(member);
        }
    }

    private ChannelSender channelSender() {
        Channel channel = getChannel();
        return channel instanceof GroupChannel ? ((GroupChannel) channel).getChannelSender() : null;
    }
}
