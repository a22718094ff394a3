#!/bin/sh
# Tomcat start options. JAVA_OPTS comes from the task definition (the service role sizes the heap to the
# container's memory, e.g. -XX:MaxRAMPercentage=75); the rest is fixed here.
CATALINA_OPTS="$CATALINA_OPTS -Dorg.apache.tomcat.util.digester.PROPERTY_SOURCE=org.apache.tomcat.util.digester.EnvironmentPropertySource"
CATALINA_OPTS="$CATALINA_OPTS -Dapp.home=/opt/cuba_home -Dlogback.configurationFile=/usr/local/tomcat/conf/logback.xml"
# CUBA middleware cluster: on when CUBA_CLUSTER_ENABLED=true (two or more tasks), JGroups over TCP.
if [ "${CUBA_CLUSTER_ENABLED:-false}" = "true" ]; then
  CATALINA_OPTS="$CATALINA_OPTS -Dcuba.cluster.enabled=true -Dcuba.cluster.jgroupsConfig=/opt/cuba_home/jgroups_tcp.xml"
  # The address other tasks reach this one on: with awsvpc networking the task's own ENI address.
  CATALINA_OPTS="$CATALINA_OPTS -Djgroups.bind_addr=${JGROUPS_BIND_ADDR:-site_local} -Djava.net.preferIPv4Stack=true"
fi
export CATALINA_OPTS
