// The Asio counterpart of include_gracefulstop.cpp: the header a signal_set user includes.
#include <boost/asio/signal_set.hpp>
