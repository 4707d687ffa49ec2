// The same job as min_gracefulstop.cpp with Boost.Asio: a signal_set for SIGTERM and SIGINT on an
// io_context, stop on the first.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

int main() {
  boost::asio::io_context io;
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  int caught = 0;
  signals.async_wait([&](const boost::system::error_code &, int signo) { caught = signo; });
  io.run();
  return caught == SIGINT ? 130 : 0;
}
